# LeRobot 0.4.4 references for GR00T N1.5 (`groot`). Include from the main Makefile after mk/parity.mk (uses its
# PARITY_VENV / parity-env). LeRobot 0.4.4's groot needs its [groot] extra's transformers<5, and that needs
# huggingface_hub<1 (and datasets<5 with it), which .venv-lerobot's pins (hub 2.x for the other references) exclude:
# those packages go into an overlay directory put first on PYTHONPATH for this script only (GROOT_DEPS_DIR, keyed
# by the pins; .venv-lerobot itself is not changed). flash-attn (CUDA only) is not installed: the script selects
# SDPA attention for Eagle's SigLIP tower.
# Output: .cache/reference/groot-lerobot-0.4.4-<sha12 of the sources + constraints + pins>/ (generated in place:
# the checkpoint records its base model's absolute path; DONE is written last), its path written to
# .cache/reference/groot-current; tests/test_parity_groot.py skips with a reason when absent.
# PARITY_GROOT_SOURCES: the script and every module it imports (tests/test_reference_sources.py checks it).
PARITY_GROOT_SCRIPT  := scripts/lerobot_reference_groot.py
PARITY_GROOT_SOURCES := $(PARITY_GROOT_SCRIPT) scripts/reference_common.py lerobot_edge/testing/checkpoints/groot.py \
                        lerobot_edge/testing/checkpoints/layout.py
PARITY_GROOT_PINS    := transformers==4.57.6 huggingface_hub==0.35.3 tokenizers==0.22.2 datasets==4.1.1 \
                        peft==0.17.1 dm-tree==0.1.9 absl-py==2.5.1 wrapt==2.5.2
PARITY_GROOT_PINS_KEY = $(shell echo '$(PARITY_GROOT_PINS)' | sha256sum | cut -c1-12)
GROOT_DEPS_DIR        = .cache/groot-deps-$(PARITY_GROOT_PINS_KEY)
PARITY_GROOT_KEY      = $(shell { cat $(PARITY_GROOT_SOURCES) mk/parity-lerobot-0.4.4.constraints.txt; \
                         echo '$(PARITY_GROOT_PINS)'; } 2>/dev/null | sha256sum | cut -c1-12)
PARITY_GROOT_DIR      = .cache/reference/groot-lerobot-0.4.4-$(PARITY_GROOT_KEY)

.PHONY: parity-ref-groot parity-groot-deps

parity-groot-deps: parity-env
	@set -e; d=$(GROOT_DEPS_DIR); \
	if [ -f "$$d/.stamp" ]; then echo "parity-groot-deps: $$d up to date"; else \
	  echo "parity-groot-deps: installing $(PARITY_GROOT_PINS) into $$d"; rm -rf "$$d"; \
	  $(PARITY_VENV)/bin/python -m pip install -qq --disable-pip-version-check --no-input --no-deps \
	    --target "$$d" $(PARITY_GROOT_PINS); \
	  echo '$(PARITY_GROOT_PINS)' > "$$d/.stamp"; fi

parity-ref-groot: parity-groot-deps
	@set -e; dir=$(PARITY_GROOT_DIR); \
	if [ -f "$$dir/DONE" ]; then echo "parity-ref-groot: cached $$dir"; else \
	  echo "parity-ref-groot: generating $$dir"; rm -rf "$$dir"; mkdir -p "$$dir"; \
	  PYTHONPATH="$(abspath $(GROOT_DEPS_DIR))" $(PARITY_VENV)/bin/python $(PARITY_GROOT_SCRIPT) --out "$$dir" \
	    > "$$dir/log.txt" 2>&1 || { tail -40 "$$dir/log.txt"; exit 1; }; \
	  for old in .cache/reference/groot-lerobot-0.4.4-*; do [ "$$old" = "$$dir" ] || rm -rf "$$old"; done; \
	fi; printf '%s\n' "$$dir" > .cache/reference/groot-current
