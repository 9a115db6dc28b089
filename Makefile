# lerobot-edge: the two contract commands are `make demo` and `make test`; each sets everything up itself.
# $(call find_python,CMDS,MIN,MAX): the first of CMDS that runs and is Python 3.MIN..3.MAX, else empty.
# Running it (not `command -v`) matters: a pyenv shim can exist for a version that is not selected.
find_python = $(shell for p in $(1); do $$p -c 'import sys; sys.exit(not (3, $(2)) <= sys.version_info[:2] <= (3, $(3)))' \
                >/dev/null 2>&1 && { echo $$p; break; }; done)
# The interpreter of .venv: 3.11 first (the tested one, and the local torch wheel here is cp311), then 3.12,
# 3.10, python3. Evaluated once, only when a recipe needs it. Override: make PYTHON=/path/to/python3.12
ifeq ($(origin PYTHON),undefined)
PYTHON = $(eval PYTHON := $(call find_python,python3.11 python3.12 python3.10 python3,10,12))$(PYTHON)
endif
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch for .venv: the tested pin when pip finds it without an index (this machine keeps its CPU wheel on local
# disk; checked offline, ~2-5 s, only when .venv is (re)built), else torch's CPU wheel index (PyPI's default
# Linux torch is a multi-GB CUDA build). Override: make TORCH_SPEC='torch==2.13.0' (e.g. a CUDA build).
TORCH_PIN       ?= torch==2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_SPEC      ?= $(if $(PYTHON),$(shell $(PYTHON) -m pip install -qq --dry-run --no-index --no-deps --ignore-installed \
                     '$(TORCH_PIN)' >/dev/null 2>&1 && echo '$(TORCH_PIN)' || echo '$(TORCH_PIN) --index-url $(TORCH_CPU_INDEX)'))
PIP    := $(PY) -m pip install -q --disable-pip-version-check
DEMO_SOURCE ?=

.PHONY: setup demo test test-fast parity bench bench-tables gpu-check clean help py310-env
help:
	@echo "The two commands (each sets up what it needs):"
	@echo "  make demo   - .venv, then export a random-weight ACT (aloha config) to ONNX, validate, run it, latencies"
	@echo "  make test   - .venv, the LeRobot 0.4.4 env + references, the Python 3.10 env; the whole pytest suite"
	@echo "Others:"
	@echo "  make test-fast   - the suite without tests marked slow (no reference envs)"
	@echo "  make parity      - .venv, the LeRobot 0.4.4 and 0.6.1 (Python 3.12) envs + their references;"
	@echo "                     runs only the tests marked parity (LeRobot 0.4.4 and 0.6.1 parity)"
	@echo "  make bench       - the pytest-benchmark latency suite in benchmarks/"
	@echo "  make bench-tables - regenerate benchmarks/README.md's tables (in the LeRobot 0.4.4 env);"
	@echo "                     TABLES_ARGS=\"--policies act --quick\": a 3-round smoke run into benchmarks/results/quick/"
	@echo "  make gpu-check   - the one GPU check (<= 8 min; a CPU smoke run without CUDA): results to \$$OUT or benchmarks/results"
	@echo "  make ov-precision - OpenVINO bf16/int8 bundles of every tiny-zoo policy through the accuracy gate"
	@echo "  make test-hostile / soak - the hardening suites alone / the long control-loop soak (SOAK_MINUTES)"
	@echo "  make rtc-exact / rtc-exact-bench - whole-bundle RTC exact tests / exact vs guided cost"
	@echo "  make pi0-full / smolvla-full - full-size export + latency (random weights; minutes, tens of GB)"
	@echo "  make serve-env / fleet-bench - the server venv (PyTriton) / the fleet benchmark (1..16 robots, one server)"
	@echo "  make clean       - remove .venv, .venv-lerobot, .venv-py310, .venv-serve, .cache, demo-out (keeps .venv-lerobot06)"
	@echo "Interpreter: PYTHON=$(PYTHON) (first of python3.11/3.12/3.10/python3 that runs 3.10-3.12)"

$(VENV)/.stamp: pyproject.toml
	@[ -n "$(PYTHON)" ] || { echo "error: no Python 3.10-3.12 found (tried python3.11 python3.12 python3.10 python3);" \
	  "install one or pass PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) $(TORCH_SPEC)
	$(PIP) -e '.[export,onnxruntime,openvino,test]'
	touch $@

setup: $(VENV)/.stamp

demo: setup
	$(PY) scripts/demo.py $(DEMO_SOURCE)

# two workers (pytest-xdist, whole modules per worker); tiny bundles are exported once per run and shared
# (tests/shared.py). PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2
PYTEST_PAR = $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile)
test: setup parity-ref parity-ref-more parity-ref-vqbet parity-ref-groot py310-env serve-env serve-lerobot-env
	$(PY) -m pytest -q $(PYTEST_PAR)

# the robot side on Python 3.10 (Jetson JetPack 6): numpy + onnxruntime, no torch
PY310 ?= $(shell PYENV_VERSION=3.10.13 command -v python3.10 >/dev/null 2>&1 && echo "env PYENV_VERSION=3.10.13 python3.10")
.venv-py310/.stamp: pyproject.toml
	@if [ -z "$(PY310)" ]; then echo "python3.10 not found: the 3.10 runtime test will be skipped"; else \
	  $(PY310) -m venv .venv-py310 && .venv-py310/bin/python -m pip install -q --disable-pip-version-check \
	  -e '.[onnxruntime]' && touch $@; fi
py310-env: .venv-py310/.stamp

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

# LeRobot 0.6 parity (pi0, pi05, SmolVLA, SAC as gaussian_actor): its own Python 3.12 venv (several GB, ~5 min the first time); not in `make test`
parity: setup parity-ref parity-ref-more parity-ref-vqbet parity-ref-groot parity06-ref smolvla-ref parity-ref-gaussian-actor
	$(PY) -m pytest -q -m parity

bench: setup
	$(PY) -m pytest benchmarks -q --benchmark-only

# the results tables of benchmarks/README.md (generated, never typed): runs in LeRobot 0.4.4's env so the tables
# have a LeRobot column; export, OpenVINO and matplotlib are added to it
bench-tables: parity-env
	$(PARITY_VENV)/bin/python -m pip install -qq --disable-pip-version-check --no-warn-conflicts \
	  -c $(PARITY_CONSTRAINTS) 'onnx>=1.16' 'onnxscript>=0.2' 'openvino>=2024.4' 'nncf>=2.12' 'av>=12' 'matplotlib>=3.7' tokenizers
	$(PARITY_VENV)/bin/python benchmarks/tables.py $(TABLES_ARGS)

# the one GPU check: needs only torch (+ numpy, onnx) and this tree, so it runs on a bare GPU machine; without CUDA a
# CPU smoke run of tiny configs. GPU_CHECK_PY: .venv's python when there is one, else python3
GPU_CHECK_PY ?= $(if $(wildcard $(PY)),$(PY),python3)
gpu-check:
	PYTHONPATH=. $(GPU_CHECK_PY) benchmarks/gpu_check.py $(GPU_CHECK_ARGS)

clean:
	rm -rf $(VENV) .venv-lerobot .venv-py310 .venv-serve .cache demo-out .pytest_cache

-include mk/parity.mk
-include mk/parity_more.mk
-include mk/parity06.mk
-include mk/parity_vqbet.mk
-include mk/parity_groot.mk
-include mk/smolvla.mk
-include mk/parity_gaussian_actor.mk
-include mk/hardening.mk
-include mk/rtc_exact.mk
-include mk/serve.mk
-include mk/ov_precision.mk
