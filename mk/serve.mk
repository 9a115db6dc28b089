# Serving (issue 17): the server side runs in its own venv because PyTriton (NVIDIA Triton's server binary in a
# wheel) pins numpy<2, which the export side does not want. Tests start servers with $(SERVE_VENV)/bin/python;
# the robot side (tritonclient) is in .venv. `serve-lerobot-env` adds grpcio to the LeRobot 0.4.4 env, where
# the `--protocol lerobot` test runs LeRobot's own robot_client and policy_server.
SERVE_VENV ?= .venv-serve

$(SERVE_VENV)/.stamp: pyproject.toml
	@[ -n "$(PYTHON)" ] || { echo "error: no Python 3.10-3.12 found; pass PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/python -m pip install -q --disable-pip-version-check -e '.[serve,onnxruntime]'
	touch $@

serve-env: $(SERVE_VENV)/.stamp

# (lerobot-edge sits in that env with --no-deps: its own base dependencies that LeRobot does not bring, too)
serve-lerobot-env: parity-env
	$(PARITY_VENV)/bin/python -c 'import grpc, jsonschema, rich' 2>/dev/null || \
	  $(PARITY_VENV)/bin/python -m pip install -qq --disable-pip-version-check --no-warn-conflicts \
	  'grpcio>=1.73.1' 'jsonschema>=4.18' 'rich>=14.1'

# the fleet benchmark (benchmarks/fleet.py): servers with and without dynamic batching, 1..16 simulated robots
fleet-bench: setup serve-env
	$(PY) benchmarks/fleet.py --serve-python $(SERVE_VENV)/bin/python $(FLEET_ARGS)

.PHONY: serve-env serve-lerobot-env fleet-bench
