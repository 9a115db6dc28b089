# RTC "exact" (pi0 / pi05 denoise_rtc graph) and full-size pi0 export + latency. Included from the main
# Makefile (`-include mk/rtc_exact.mk`); run from the repo root.
#   make rtc-exact           whole-bundle RTC exact tests (pi0 + pi05 exported with rtc_exact=True; ONNX Runtime
#                            and OpenVINO; minutes): tests/test_rtc_exact.py with LEROBOT_EDGE_RTC_EXACT_BUNDLES=1
#   make rtc-exact-bench     exact vs guided cost, reduced and mid-size pi0 -> benchmarks/results/rtc_exact_*.json
#   make pi0-full            full-size pi0 (3.3 B, random weights): checkpoint, export (time, peak memory per
#                            phase), chunk latency eager / onnxruntime / openvino (one process each), accuracy vs
#                            eager -> benchmarks/results/pi0_full_*.json. Needs ~40 GB disk and ~16 GiB free memory.

PY          ?= .venv/bin/python
PI0_FULL    ?= /work/full
PI0_RESULTS ?= benchmarks/results

.PHONY: rtc-exact rtc-exact-bench pi0-full pi0-full-checkpoint pi0-full-export pi0-full-latency

rtc-exact:
	LEROBOT_EDGE_RTC_EXACT_BUNDLES=1 $(PY) -m pytest -q tests/test_rtc_exact.py

rtc-exact-bench:
	$(PY) benchmarks/rtc_exact_cost.py --size reduced --out $(PI0_RESULTS)/rtc_exact_reduced.json
	$(PY) benchmarks/rtc_exact_cost.py --size mid --rounds 3 --out $(PI0_RESULTS)/rtc_exact_mid.json

pi0-full-checkpoint:
	@test -f $(PI0_FULL)/pi0_full/model.safetensors || \
	  /usr/bin/time -v $(PY) scripts/write_full_pi0.py $(PI0_FULL)/pi0_full --cameras 1

pi0-full-export: pi0-full-checkpoint
	/usr/bin/time -v $(PY) benchmarks/pi0_full.py --json $(PI0_RESULTS)/pi0_full_export.json \
	  export $(PI0_FULL)/pi0_full $(PI0_FULL)/bundle

pi0-full-latency:
	for b in eager onnxruntime openvino openvino-bf16; do \
	  /usr/bin/time -v $(PY) benchmarks/pi0_full.py --json $(PI0_RESULTS)/pi0_full_latency_$$b.json latency \
	    $(PI0_FULL)/bundle --backend $$b --checkpoint $(PI0_FULL)/pi0_full --results $(PI0_FULL)/results || exit 1; \
	done
	$(PY) benchmarks/pi0_full.py --json $(PI0_RESULTS)/pi0_full_accuracy.json compare $(PI0_FULL)/bundle \
	  --results $(PI0_FULL)/results

pi0-full: pi0-full-export pi0-full-latency
