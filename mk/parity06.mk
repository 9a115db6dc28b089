# LeRobot 0.6.1 reference environment and references for the pi0 / pi05 (later SmolVLA) parity tests.
# Included from the main Makefile (the lead adds `include mk/parity06.mk` and makes `parity` depend on
# `parity06`); run from the repo root.
#   make parity06-env   .venv-lerobot06: Python 3.12 venv, torch <2.12 from PyPI (a multi-GB CUDA build),
#                       lerobot 0.6.1 --no-deps + its import-time needs (idempotent, stamp file)
#   make parity06-ref   reduced pi0 checkpoint + reference chunks (with / without RTC) into
#                       .cache/reference/lerobot-0.6.1-pi-<key>/ (key: script, fixture and version hashes);
#                       its path goes to .cache/reference/current-0.6
#   make parity06       the parity tests against those references (tests/test_parity_pi0.py)

PARITY06_PYTHON    ?= PYENV_VERSION=3.12.1 python3.12
PARITY06_VENV      ?= .venv-lerobot06
PARITY06_LEROBOT   := 0.6.1
PARITY06_TORCH     := 'torch>=2.7,<2.12' 'torchvision<0.27'
PARITY06_DEPS      := 'transformers>=5.4,<5.6' draccus einops huggingface-hub safetensors diffusers num2words \
                      tokenizers 'numpy<2.3' 'packaging<26' 'Pillow<13' 'opencv-python-headless<4.14' 'av>=15,<16' \
                      termcolor pyyaml deepdiff jsonlines gymnasium datasets pandas pyarrow imageio
PARITY06_PIP       := $(PARITY06_VENV)/bin/python -m pip install -qq --disable-pip-version-check --no-input \
                      --no-warn-conflicts
PARITY06_STAMP     := $(PARITY06_VENV)/.parity06-env-stamp
PARITY06_ENV_ID    := lerobot==$(PARITY06_LEROBOT) $(PARITY06_TORCH) $(PARITY06_DEPS)
# the script and every module it imports (tests/test_reference_sources.py checks it)
PARITY06_SOURCES   := scripts/lerobot_reference_pi.py scripts/reference_vla.py scripts/reference_common.py \
                      lerobot_edge/testing/checkpoints/pi.py lerobot_edge/testing/checkpoints/layout.py
PARITY06_PYTEST    ?= python -m pytest

.PHONY: parity06 parity06-env parity06-ref parity06-ref-force

parity06-env:
	@if [ -f $(PARITY06_STAMP) ] && [ "$$(cat $(PARITY06_STAMP))" = "$(strip $(PARITY06_ENV_ID))" ]; then \
	  echo "parity06-env: $(PARITY06_VENV) up to date"; \
	else \
	  set -e; $(PARITY06_PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1 || { \
	    echo "parity06-env: the LeRobot $(PARITY06_LEROBOT) reference env needs Python 3.12, and" \
	      "'$(PARITY06_PYTHON)' does not run one: install Python 3.12 or pass PARITY06_PYTHON=/path/to/python3.12" >&2; \
	    exit 1; }; \
	  echo "parity06-env: building $(PARITY06_VENV) (lerobot $(PARITY06_LEROBOT))"; \
	  rm -rf $(PARITY06_VENV); \
	  $(PARITY06_PYTHON) -m venv $(PARITY06_VENV); \
	  $(PARITY06_PIP) $(PARITY06_TORCH); \
	  $(PARITY06_PIP) --no-deps lerobot==$(PARITY06_LEROBOT); \
	  $(PARITY06_PIP) $(PARITY06_DEPS); \
	  $(PARITY06_VENV)/bin/python -c "import lerobot; from lerobot.policies.pi0.modeling_pi0 import PI0Policy; \
	    assert lerobot.__version__ == '$(PARITY06_LEROBOT)', lerobot.__version__"; \
	  printf '%s\n' "$(strip $(PARITY06_ENV_ID))" > $(PARITY06_STAMP); \
	fi

parity06-ref: parity06-env
	@set -e; key=$$(cat $(PARITY06_SOURCES) $(PARITY06_STAMP) | sha256sum | cut -c1-16); \
	dir=.cache/reference/lerobot-$(PARITY06_LEROBOT)-pi-$$key; \
	if [ -f "$$dir/DONE" ]; then echo "parity06-ref: cached $$dir"; else \
	  echo "parity06-ref: generating $$dir"; rm -rf "$$dir" "$$dir.tmp"; mkdir -p .cache/reference; \
	  $(PARITY06_VENV)/bin/python scripts/lerobot_reference_pi.py --out "$$dir.tmp"; \
	  mv "$$dir.tmp" "$$dir"; \
	  for old in .cache/reference/lerobot-$(PARITY06_LEROBOT)-pi-*; do \
	    [ "$$old" = "$$dir" ] || { echo "parity06-ref: removing stale $$old"; rm -rf "$$old"; }; done; \
	fi; \
	printf '%s\n' "$$dir" > .cache/reference/current-0.6.tmp; mv .cache/reference/current-0.6.tmp .cache/reference/current-0.6

parity06-ref-force:
	rm -f .cache/reference/current-0.6; rm -rf .cache/reference/lerobot-$(PARITY06_LEROBOT)-pi-*
	$(MAKE) parity06-ref

parity06: parity06-ref
	$(PARITY06_PYTEST) -m parity tests/test_parity_pi0.py
