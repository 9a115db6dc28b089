# LeRobot 0.4.4 references for SAC and TDMPC (VQ-BeT to come). Include from the main Makefile after mk/parity.mk
# (uses its PARITY_VENV / parity-env). Output: .cache/reference/more-lerobot-0.4.4-<sha12 of the sources>/,
# its path written to .cache/reference/more-current; tests/test_parity_{sac,tdmpc}.py skip with a reason when absent.
# PARITY_MORE_SOURCES: the scripts and every module they import (tests/test_reference_sources.py checks it).
PARITY_MORE_SOURCES := scripts/lerobot_reference_sac.py scripts/lerobot_reference_tdmpc.py scripts/reference_common.py
PARITY_MORE_KEY      = $(shell cat $(PARITY_MORE_SOURCES) mk/parity-lerobot-0.4.4.constraints.txt 2>/dev/null \
                         | sha256sum | cut -c1-12)
PARITY_MORE_DIR      = .cache/reference/more-lerobot-0.4.4-$(PARITY_MORE_KEY)

.PHONY: parity-ref-more

parity-ref-more: parity-env
	@set -e; dir=$(PARITY_MORE_DIR); \
	if [ -f "$$dir/DONE" ]; then echo "parity-ref-more: cached $$dir"; else \
	  echo "parity-ref-more: generating $$dir"; rm -rf "$$dir" "$$dir.tmp"; mkdir -p "$$dir.tmp"; \
	  $(PARITY_VENV)/bin/python scripts/lerobot_reference_sac.py --out "$$dir.tmp/sac"; \
	  $(PARITY_VENV)/bin/python scripts/lerobot_reference_tdmpc.py --out "$$dir.tmp/tdmpc"; \
	  touch "$$dir.tmp/DONE"; mv "$$dir.tmp" "$$dir"; \
	  for old in .cache/reference/more-lerobot-0.4.4-*; do [ "$$old" = "$$dir" ] || rm -rf "$$old"; done; \
	fi; printf '%s\n' "$$dir" > .cache/reference/more-current
