# SmolVLA: LeRobot 0.6.1 references and parity tests, full-size export benchmark. Included from the main Makefile
# after mk/parity06.mk (it reuses its .venv-lerobot06: `parity06-env`); run from the repo root.
#   make smolvla-ref      reduced SmolVLA checkpoint (tiny SmolVLM2-like VLM dir) + reference chunks with / without
#                         RTC into .cache/reference/lerobot-0.6.1-smolvla-<key>/ (key: script, fixture and env
#                         hashes); its path goes to .cache/reference/current-smolvla
#   make smolvla-parity   the parity tests against those references (tests/test_parity_smolvla.py)
#   make smolvla-full     full-size (SmolVLM2-500M) export + chunk latency eager / onnxruntime / openvino fp32, bf16, int8
#                         (benchmarks/smolvla_full.py; ~20 GB disk-backed temp, one process per backend)

# the script and every module it imports (tests/test_reference_sources.py checks it)
SMOLVLA_SOURCES := scripts/lerobot_reference_smolvla.py scripts/reference_vla.py scripts/reference_common.py \
                   lerobot_edge/testing/checkpoints/smolvla.py lerobot_edge/testing/checkpoints/layout.py
SMOLVLA_PY      ?= .venv/bin/python
SMOLVLA_FULL_DIR ?= .cache/smolvla-full

.PHONY: smolvla-ref smolvla-ref-force smolvla-parity smolvla-full

smolvla-ref: parity06-env
	@set -e; key=$$(cat $(SMOLVLA_SOURCES) $(PARITY06_STAMP) | sha256sum | cut -c1-16); \
	dir=.cache/reference/lerobot-$(PARITY06_LEROBOT)-smolvla-$$key; \
	if [ -f "$$dir/DONE" ]; then echo "smolvla-ref: cached $$dir"; else \
	  echo "smolvla-ref: generating $$dir"; rm -rf "$$dir" "$$dir.tmp"; mkdir -p .cache/reference; \
	  $(PARITY06_VENV)/bin/python scripts/lerobot_reference_smolvla.py --out "$$dir.tmp"; \
	  mv "$$dir.tmp" "$$dir"; \
	  for old in .cache/reference/lerobot-$(PARITY06_LEROBOT)-smolvla-*; do \
	    [ "$$old" = "$$dir" ] || { echo "smolvla-ref: removing stale $$old"; rm -rf "$$old"; }; done; \
	fi; \
	printf '%s\n' "$$dir" > .cache/reference/current-smolvla.tmp; \
	mv .cache/reference/current-smolvla.tmp .cache/reference/current-smolvla

smolvla-ref-force:
	rm -f .cache/reference/current-smolvla; rm -rf .cache/reference/lerobot-$(PARITY06_LEROBOT)-smolvla-*
	$(MAKE) smolvla-ref

smolvla-parity: smolvla-ref
	$(SMOLVLA_PY) -m pytest -q -m parity tests/test_parity_smolvla.py

smolvla-full:
	$(SMOLVLA_PY) benchmarks/smolvla_full.py --work $(SMOLVLA_FULL_DIR) all
