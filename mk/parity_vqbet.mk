# LeRobot 0.4.4 references for VQ-BeT. Include from the main Makefile after mk/parity.mk (uses its PARITY_VENV /
# parity-env). Output: .cache/reference/vqbet-lerobot-0.4.4-<sha12 of the sources + constraints>/, its path
# written to .cache/reference/vqbet-current; tests/test_parity_vqbet.py skips with a reason when absent.
# PARITY_VQBET_SOURCES: the script and every module it imports (tests/test_reference_sources.py checks it).
PARITY_VQBET_SCRIPT  := scripts/lerobot_reference_vqbet.py
PARITY_VQBET_SOURCES := $(PARITY_VQBET_SCRIPT) scripts/reference_common.py
PARITY_VQBET_KEY      = $(shell cat $(PARITY_VQBET_SOURCES) mk/parity-lerobot-0.4.4.constraints.txt 2>/dev/null \
                         | sha256sum | cut -c1-12)
PARITY_VQBET_DIR     = .cache/reference/vqbet-lerobot-0.4.4-$(PARITY_VQBET_KEY)

.PHONY: parity-ref-vqbet

parity-ref-vqbet: parity-env
	@set -e; dir=$(PARITY_VQBET_DIR); \
	if [ -f "$$dir/DONE" ]; then echo "parity-ref-vqbet: cached $$dir"; else \
	  echo "parity-ref-vqbet: generating $$dir"; rm -rf "$$dir" "$$dir.tmp"; mkdir -p "$$dir.tmp"; \
	  $(PARITY_VENV)/bin/python $(PARITY_VQBET_SCRIPT) --out "$$dir.tmp"; \
	  touch "$$dir.tmp/DONE"; mv "$$dir.tmp" "$$dir"; \
	  for old in .cache/reference/vqbet-lerobot-0.4.4-*; do [ "$$old" = "$$dir" ] || rm -rf "$$old"; done; \
	fi; printf '%s\n' "$$dir" > .cache/reference/vqbet-current
