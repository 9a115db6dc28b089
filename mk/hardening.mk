# Hardening (issue #10): crafted bundles/checkpoints, hostile observations for every policy type, the output
# guard, faults in the control loop, soak. Included from the main Makefile; run from the repo root.
#   make test-hostile   the hardening suites only (they also run in `make test`)
#   make soak           the long soak: async loop at 50 Hz for SOAK_MINUTES with the sim robot, then
#                       SOAK_CALLS select_action calls; figures to benchmarks/results/soak.{json,md}
SOAK_MINUTES ?= 10
SOAK_CALLS   ?= 100000
SOAK_BUNDLE  ?= .cache/soak/act_tiny

.PHONY: test-hostile soak

test-hostile: setup
	$(PY) -m pytest -q tests/test_hostile.py tests/test_hostile_corpus.py tests/test_hostile_observations.py \
	  tests/test_hostile_outputs.py tests/test_control_faults.py tests/test_soak.py

$(SOAK_BUNDLE)/manifest.json: | setup
	$(PY) -c "import sys; sys.path.insert(0, 'tests'); from pathlib import Path; \
	  from lerobot_layout import TINY_ACT, write_act_checkpoint; from lerobot_edge import export; \
	  c = write_act_checkpoint(Path('$(SOAK_BUNDLE)-ckpt'), with_type=True, **TINY_ACT); \
	  export(c, Path('$(SOAK_BUNDLE)'), overwrite=True)"

soak: setup $(SOAK_BUNDLE)/manifest.json
	$(PY) benchmarks/soak.py $(SOAK_BUNDLE) --minutes $(SOAK_MINUTES) --calls $(SOAK_CALLS) --max-records 1000 \
	  --trace --out benchmarks/results/soak
