# lerobot-edge: the two contract commands are `make demo` and `make test`; each sets everything up itself.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
# This CPU machine keeps a CPU build of torch 2.13.0 on local disk; elsewhere pick your own build, e.g.
# TORCH_SPEC='torch --index-url https://download.pytorch.org/whl/cpu'
TORCH_SPEC ?= torch==2.13.0
PIP    := $(PY) -m pip install -q --disable-pip-version-check
DEMO_SOURCE ?=

.PHONY: setup demo test test-fast parity bench bench-tables clean help py310-env
help:
	@echo "make demo   - set up, export an ACT policy (random weights, aloha config) and run it"
	@echo "make test   - set up (incl. the LeRobot 0.4.4 reference env) and run the test suite"
	@echo "make bench  - latency benchmarks (benchmarks/, pytest-benchmark)"
	@echo "make bench-tables - regenerate benchmarks/README.md's tables (lerobot-edge bench per standard config)"
	@echo "make parity - also the LeRobot 0.6.1 parity (pi0, pi05, SmolVLA, gaussian_actor; Python 3.12 env)"
	@echo "make rtc-exact / rtc-exact-bench - whole-bundle RTC exact tests / exact vs guided cost"
	@echo "make pi0-full / smolvla-full - full-size export + latency (random weights; minutes, GBs)"
	@echo "make test-hostile / soak - hardening suites / the long control-loop soak"

$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) $(TORCH_SPEC)
	$(PIP) -e '.[export,onnxruntime,openvino,test]'
	touch $@

setup: $(VENV)/.stamp

demo: setup
	$(PY) scripts/demo.py $(DEMO_SOURCE)

test: setup parity-ref parity-ref-more parity-ref-vqbet py310-env
	$(PY) -m pytest -q

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
parity: setup parity-ref parity-ref-more parity-ref-vqbet parity06-ref smolvla-ref parity-ref-gaussian-actor
	$(PY) -m pytest -q -m parity

bench: setup
	$(PY) -m pytest benchmarks -q --benchmark-only

# the results tables of benchmarks/README.md (generated, never typed): runs in LeRobot 0.4.4's env so the tables
# have a LeRobot column; export, OpenVINO and matplotlib are added to it
bench-tables: parity-env
	$(PARITY_VENV)/bin/python -m pip install -qq --disable-pip-version-check --no-warn-conflicts \
	  -c $(PARITY_CONSTRAINTS) 'onnx>=1.16' 'onnxscript>=0.2' 'openvino>=2024.4' 'matplotlib>=3.7' tokenizers
	$(PARITY_VENV)/bin/python benchmarks/tables.py $(TABLES_ARGS)

clean:
	rm -rf $(VENV) .venv-lerobot .venv-py310 .cache demo-out .pytest_cache

-include mk/parity.mk
-include mk/parity_more.mk
-include mk/parity06.mk
-include mk/parity_vqbet.mk
-include mk/smolvla.mk
-include mk/parity_gaussian_actor.mk
-include mk/hardening.mk
-include mk/rtc_exact.mk
