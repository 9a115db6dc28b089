"""Precision expressed in the graph for TensorRT (exporters/onnx_islands.py, backends/tensorrt_plan.py): the fp32
islands are selected from what each exported ONNX contains (never from node-name patterns, which the dynamo
exporter's names never matched), and a GPU without the tensor cores a precision needs is refused by name."""

from __future__ import annotations

import json

import onnx
import pytest

import tiny_zoo
from lerobot_edge.backends.tensorrt_plan import check_gpu_precision, keep_fp32, supported_on
from lerobot_edge.bundle import Bundle
from lerobot_edge.errors import BackendUnavailableError, PrecisionUnsupportedError
from lerobot_edge.exporters.onnx_islands import NORM_OPS, SOFTMAX_OPS, select_fp32_islands


def _must_cover(model) -> set[str]:
    """Every norm and softmax node, and the ReduceMean of each RMSNorm the exporter decomposed (Pow -> mean)."""
    producer = {o: n for n in model.graph.node for o in n.output}
    out = {n.name for n in model.graph.node if n.op_type in NORM_OPS | SOFTMAX_OPS}
    out |= {n.name for n in model.graph.node if n.op_type == "ReduceMean" and n.input[0] in producer
            and producer[n.input[0]].op_type == "Pow"}
    return out


@pytest.mark.parametrize("policy", tiny_zoo.POLICY_TYPES)
def test_islands_cover_every_norm_and_softmax_of_every_graph(policy, request):
    bundle = tiny_zoo.tiny_bundle(policy, request)
    for graph in Bundle.open(bundle).graphs.values():
        model = onnx.load(str(bundle / graph.file), load_external_data=False)
        islands = select_fp32_islands(model)
        assert islands["nodes"], f"{policy}/{graph.name}: no fp32 island selected"
        missing = _must_cover(model) - set(islands["nodes"])
        assert not missing, f"{policy}/{graph.name}: norms/softmax left out of the fp32 islands: {sorted(missing)}"
        assert islands["rules"]["output_projection"] > 0, f"{policy}/{graph.name}: output projection not kept"
        # the names are the graph's own: what TensorRT's ONNX parser names the layers after
        names = {n.name for n in model.graph.node}
        assert set(islands["nodes"]) <= names and all(keep_fp32(n, [], islands) for n in islands["nodes"])


def test_the_output_projection_is_the_producer_of_each_output(act_tiny_bundle):
    model = onnx.load(str(act_tiny_bundle / "act.onnx"), load_external_data=False)
    producer = {o: n for n in model.graph.node for o in n.output}
    islands = select_fp32_islands(model)
    add = producer["action"]                       # the final linear's bias add ...
    matmul = next(producer[i] for i in add.input if i in producer)   # ... and its MatMul
    assert {add.name, matmul.name} <= set(islands["nodes"]) and "action" in islands["tensors"]
    assert not any(n.op_type == "Conv" for n in model.graph.node if n.name in islands["nodes"])  # backbone: fp16


def test_layers_match_by_name_suffix_or_output_tensor():
    islands = {"nodes": ["node_layer_norm_3", "node_Softmax_475"], "tensors": ["layer_norm_3"]}
    assert keep_fp32("node_layer_norm_3", [], islands)
    assert keep_fp32("node_Softmax_475_1", ["x"], islands)          # a second TensorRT layer of one node
    assert keep_fp32("some_trt_layer", ["layer_norm_3"], islands)   # writes an island's output tensor
    assert not keep_fp32("node_linear_2", ["linear_2"], islands)
    assert not keep_fp32("node_layer_norm", [], islands)


def test_the_plan_records_the_selected_islands(act_trt_bundle):
    plan = json.loads((act_trt_bundle / "trt" / "act.plan.json").read_text())
    model = onnx.load(str(act_trt_bundle / plan["onnx"]), load_external_data=False)
    norms = {n.name for n in model.graph.node if n.op_type in ("LayerNormalization", "Softmax")}
    assert norms and norms <= set(plan["fp32_islands"]["nodes"])
    assert plan["fp32_islands"]["ops"]["LayerNormalization"] == 8 and plan["version"] == 2


@pytest.mark.parametrize("precision, cc, gpu", [("fp8", "8.7", "Orin"), ("fp8", "8.6", "NVIDIA GeForce RTX 3090"),
                                                ("int8", "7.0", "Tesla V100"), ("bf16", "7.5", "Tesla T4")])
def test_a_gpu_without_the_tensor_cores_is_refused_by_name(precision, cc, gpu):
    with pytest.raises(PrecisionUnsupportedError, match=f"{precision} needs .*{gpu} has {cc}") as e:
        check_gpu_precision(precision, cc, gpu)
    assert isinstance(e.value, BackendUnavailableError) and e.value.exit_code == 3


@pytest.mark.parametrize("precision, cc", [("fp8", "8.9"), ("fp8", "9.0"), ("fp8", "11.0"), ("int8", "8.7"),
                                           ("int8", "7.2"), ("bf16", "8.7"), ("fp16", "7.0"), ("fp32", "6.1")])
def test_a_gpu_with_the_tensor_cores_builds(precision, cc):
    check_gpu_precision(precision, cc, "gpu")
    assert precision in supported_on(cc)


def test_orin_builds_everything_but_fp8():
    assert supported_on("8.7") == ["fp32", "fp16", "bf16", "int8"]


@pytest.mark.parametrize("precision, typed, strongly, flags", [
    ("fp16", True, True, ["FP16", "OBEY_PRECISION_CONSTRAINTS"]),
    ("int8", True, True, ["INT8", "FP16", "OBEY_PRECISION_CONSTRAINTS"]),
    ("bf16", False, False, ["BF16", "OBEY_PRECISION_CONSTRAINTS"]),
    ("fp32", False, True, [])])
def test_graph_typed_precisions_build_strongly_typed(act_tiny_bundle, precision, typed, strongly, flags):
    """fp16 / int8 graphs carry their types (built strongly typed; the flags serve only a TensorRT without
    strongly typed networks); bf16 is the fp32 graph built weakly typed with the islands pinned."""
    from lerobot_edge.backends.tensorrt_plan import build_plan

    spec = Bundle.open(act_tiny_bundle).graphs["act"]
    model = onnx.load(str(act_tiny_bundle / spec.file), load_external_data=False)
    plan = build_plan(spec, "0" * 64, precision, islands=select_fp32_islands(model), typed=typed)
    assert plan["strongly_typed"] is strongly and plan["builder_flags"] == flags
    assert bool(plan["fp32_islands"]["nodes"]) is (precision != "fp32")
    assert plan["min_compute_capability"] == {"bf16": "8.0", "int8": "7.2"}.get(precision, "0.0")
