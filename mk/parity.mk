# LeRobot 0.4.4 reference environment and reference outputs for the ACT parity tests (tests/parity/README.md).
# Included from the main Makefile; run from the repo root.
#   make parity-env   .venv-lerobot: Python 3.11 venv (PARITY_PYTHON, exactly 3.11) with torch 2.14.1 + lerobot 0.4.4 (idempotent, stamp file)
#   make parity-ref   LeRobot checkpoints + reference actions into .cache/reference/lerobot-0.4.4-<key>/
#                     (skipped when that dir has DONE; other lerobot-0.4.4-* dirs are removed when a new one
#                     is generated); writes its path, relative to the repo root, to .cache/reference/current

PARITY_PYTHON       ?= python3.11
PARITY_VENV         ?= .venv-lerobot
PARITY_LEROBOT_VERSION := 0.4.4
PARITY_TORCH        := torch==2.14.1 torchvision==0.29.1
# LeRobot's import-time needs, installed after `pip install --no-deps lerobot` (its own pins are too tight).
PARITY_DEPS         := draccus einops huggingface-hub safetensors termcolor packaging numpy 'diffusers<0.36' \
                       gymnasium opencv-python-headless deepdiff datasets jsonlines pandas pyarrow av accelerate \
                       imageio pyserial
# Versions the references were verified with; set PARITY_CONSTRAINTS= to install whatever pip picks.
PARITY_CONSTRAINTS  ?= mk/parity-lerobot-$(PARITY_LEROBOT_VERSION).constraints.txt
PARITY_CASES        ?= aloha,multicam_prenorm,ensemble,novae_quantiles,resnet50_dilation,env_only
# all | small (all cases but aloha) | off: perturb every weight and check the chunk moves
PARITY_SENSITIVITY  ?= off

# -qq: errors only (a machine's pip config may warn about every local index it searches).
# --no-warn-conflicts: lerobot is installed --no-deps on purpose; its pins (torch<2.11, draccus==0.10) are not met.
PARITY_PIP_QUIET    ?= -qq
PARITY_PIP          := $(PARITY_VENV)/bin/python -m pip install $(PARITY_PIP_QUIET) --disable-pip-version-check \
                       --no-input --no-warn-conflicts $(if $(PARITY_CONSTRAINTS),-c $(PARITY_CONSTRAINTS))
PARITY_STAMP        := $(PARITY_VENV)/.parity-env-stamp
# What the venv was built from: any change rebuilds it.
PARITY_ENV_ID       := lerobot==$(PARITY_LEROBOT_VERSION) $(PARITY_TORCH) $(PARITY_DEPS) onnxruntime lerobot-edge-editable \
                       constraints=$(if $(PARITY_CONSTRAINTS),$(firstword $(shell sha256sum $(PARITY_CONSTRAINTS) 2>/dev/null)))

.PHONY: parity-env parity-ref parity-ref-force parity-ref-clean

parity-env:
	@if [ -f $(PARITY_STAMP) ] && [ "$$(cat $(PARITY_STAMP))" = "$(strip $(PARITY_ENV_ID))" ]; then \
	  echo "parity-env: $(PARITY_VENV) up to date"; \
	else \
	  set -e; $(PARITY_PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' >/dev/null 2>&1 || { \
	    echo "parity-env: the LeRobot $(PARITY_LEROBOT_VERSION) reference env needs Python 3.11 (its verified" \
	      "pins and wheels are cp311), and '$(PARITY_PYTHON)' does not run one: install Python 3.11 or pass" \
	      "PARITY_PYTHON=/path/to/python3.11" >&2; exit 1; }; \
	  echo "parity-env: building $(PARITY_VENV) (lerobot $(PARITY_LEROBOT_VERSION), $(PARITY_TORCH))"; \
	  rm -rf $(PARITY_VENV); \
	  $(PARITY_PYTHON) -m venv $(PARITY_VENV); \
	  $(PARITY_PIP) $(PARITY_TORCH); \
	  $(PARITY_PIP) --no-deps lerobot==$(PARITY_LEROBOT_VERSION); \
	  $(PARITY_PIP) $(PARITY_DEPS); \
	  $(PARITY_PIP) onnxruntime && $(PARITY_PIP) --no-deps -e .; \
	  $(PARITY_VENV)/bin/python -c "import lerobot; from lerobot.policies.act.modeling_act import ACTPolicy; \
	    assert lerobot.__version__ == '$(PARITY_LEROBOT_VERSION)', lerobot.__version__"; \
	  printf '%s\n' "$(strip $(PARITY_ENV_ID))" > $(PARITY_STAMP); \
	fi

parity-ref: parity-env
	@set -e; dir=$$(PARITY_LEROBOT_VERSION=$(PARITY_LEROBOT_VERSION) scripts/reference_cache.sh "$(PARITY_CASES)"); \
	if [ -f "$$dir/DONE" ]; then \
	  echo "parity-ref: cached $$dir"; \
	else \
	  echo "parity-ref: generating $$dir ($(PARITY_CASES))"; \
	  rm -rf "$$dir" "$$dir.tmp"; mkdir -p "$$(dirname "$$dir")"; \
	  $(PARITY_VENV)/bin/python scripts/lerobot_reference.py --out "$$dir.tmp" --cases "$(PARITY_CASES)" \
	    --sensitivity $(PARITY_SENSITIVITY); \
	  $(PARITY_VENV)/bin/python scripts/lerobot_reference_diffusion.py --out "$$dir.tmp/diffusion"; \
	  mv "$$dir.tmp" "$$dir"; \
	  for old in .cache/reference/lerobot-$(PARITY_LEROBOT_VERSION)-*; do \
	    [ "$$old" = "$$dir" ] || { echo "parity-ref: removing stale $$old"; rm -rf "$$old"; }; \
	  done; \
	fi; \
	printf '%s\n' "$$dir" > .cache/reference/current.tmp; mv .cache/reference/current.tmp .cache/reference/current

# Regenerate even if cached.
parity-ref-force: parity-env
	rm -rf "$$(PARITY_LEROBOT_VERSION=$(PARITY_LEROBOT_VERSION) scripts/reference_cache.sh "$(PARITY_CASES)")"
	$(MAKE) parity-ref

parity-ref-clean:
	rm -rf .cache/reference
