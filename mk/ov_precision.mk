# OpenVINO bf16 and int8 bundles for every policy of the tiny zoo with the accuracy gate (issue #16): per graph
# cos >= 0.999 against fp32 PyTorch, the sampled chunk end to end for policies with a host loop, int8 calibrated
# on observations (.npz) with each graph's NNCF mode recorded. Minutes on 2 cores, so not in `make test`.
.PHONY: ov-precision
ov-precision: setup
	LEROBOT_EDGE_OV_ZOO=1 $(PY) -m pytest -q tests/test_targets.py -k across_the_zoo
