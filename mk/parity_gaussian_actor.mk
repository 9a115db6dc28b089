# LeRobot 0.6.1 references for SAC's actor under its 0.6 name, `gaussian_actor`. Include from the main Makefile
# after mk/parity06.mk (uses its PARITY06_VENV / parity06-env). Output:
# .cache/reference/gaussian-actor-lerobot-0.6.1-<sha12 of the sources>/, its path written to
# .cache/reference/gaussian-actor-current; tests/test_parity_gaussian_actor.py skips with a reason when absent.
# PARITY_GA_SOURCES: the script and every module it imports (tests/test_reference_sources.py checks it).
PARITY_GA_SOURCES := scripts/lerobot_reference_gaussian_actor.py scripts/lerobot_reference_sac.py \
                     scripts/reference_common.py
PARITY_GA_KEY      = $(shell cat $(PARITY_GA_SOURCES) 2>/dev/null | sha256sum | cut -c1-12)
PARITY_GA_DIR      = .cache/reference/gaussian-actor-lerobot-0.6.1-$(PARITY_GA_KEY)

.PHONY: parity-ref-gaussian-actor

parity-ref-gaussian-actor: parity06-env
	@set -e; dir=$(PARITY_GA_DIR); \
	if [ -f "$$dir/DONE" ]; then echo "parity-ref-gaussian-actor: cached $$dir"; else \
	  echo "parity-ref-gaussian-actor: generating $$dir"; rm -rf "$$dir" "$$dir.tmp"; mkdir -p "$$dir.tmp"; \
	  $(PARITY06_VENV)/bin/python scripts/lerobot_reference_gaussian_actor.py --out "$$dir.tmp"; \
	  touch "$$dir.tmp/DONE"; mv "$$dir.tmp" "$$dir"; \
	  for old in .cache/reference/gaussian-actor-lerobot-0.6.1-*; do [ "$$old" = "$$dir" ] || rm -rf "$$old"; done; \
	fi; printf '%s\n' "$$dir" > .cache/reference/gaussian-actor-current
