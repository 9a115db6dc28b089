"""int8 exports meet their own gate (issue #16): the converters check on gate-like inputs, the export's per-graph
precision fallback (exporters/precision_fallback.py) tightens the graphs that still fail, and the manifest says
what runs in int8, what in fp32 and why. Real exports of tiny checkpoints on ONNX Runtime."""

from __future__ import annotations

import json

import pytest

from lerobot_edge import export, load_policy
from lerobot_edge.exporters import targets
from lerobot_edge.testing.checkpoints.act import tiny_observations
from lerobot_edge.testing.checkpoints.pi import tiny_pi0
from lerobot_edge.testing.checkpoints.tdmpc import tiny as tiny_tdmpc


def _manifest(bundle) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def test_tdmpc_int8_trt_passes_the_gate_through_the_fallback(tmp_path, monkeypatch):
    """With the converter's check on batch-1 calibration feeds only (what it did before), TDMPC's value graph in
    TensorRT's symmetric int8 passes it (G (B,) is a scalar per feed) and fails the gate's batch-2 cosine: the
    fallback converts that graph again, stricter, and the bundle ships; every round is in the manifest. (With
    --target onnx's uint8 activations the first conversion already passes.)"""
    monkeypatch.setattr("lerobot_edge.exporters.onnx_qdq.SEEDED_CHECKS", ())
    b = export(tiny_tdmpc(tmp_path / "ckpt"), tmp_path / "b", "trt", precision="int8")
    m = _manifest(b)
    assert m["validation"]["passed"] is True
    q = m["quantization"]
    assert set(q) == {g["name"] for g in m["graphs"]}
    for name, rec in q.items():   # the ORT Q/DQ record, the OpenVINO one's shape
        assert rec["mode"] in ("qdq", "fp32") and rec["calibration"] == "synthetic", (name, rec)
        assert isinstance(rec["kept_fp32"], list) and rec["rounds"][0]["round"] == 0
        assert rec["rounds"][-1]["gate"] == "pass"
        assert rec["mode"] == "fp32" or rec["activations"] == "int8"   # TensorRT's explicit quantization
    rounds = q["value"]["rounds"]
    assert rounds[0]["gate"].startswith("FAIL value.") and len(rounds) >= 2
    assert rounds[1]["options"] and rounds[1]["why"].startswith("FAIL value.")
    assert len(q["encoder"]["rounds"]) == 1   # a graph that passed is left as it was


def test_trt_int8_is_a_symmetric_qdq_graph_built_strongly_typed_that_onnxruntime_runs(act_tiny_checkpoint, tmp_path):
    """--target trt --precision int8: the Q/DQ ONNX TensorRT's explicit quantization takes (int8 activations and
    weights, zero points 0), a strongly typed build plan with no precision flags, and the same graph run here on
    ONNX Runtime CPU matches the fp32 policy (what a machine without a GPU can check)."""
    import numpy as np
    import onnx

    b = export(act_tiny_checkpoint, tmp_path / "b", "trt", policy_type="act", precision="int8")
    m = _manifest(b)
    q = m["quantization"]["act"]
    assert m["validation"]["passed"] and q["mode"] == "qdq" and q["activations"] == "int8" and q["quantized"] > 0
    assert "requires" not in q and "reduce_range" not in q
    model = onnx.load(str(b / "act.onnx"))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    zps = [inits[n.input[2]] for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert zps and all(z.dtype == np.int8 and not z.any() for z in zps)
    plan = json.loads((b / "trt" / "act.plan.json").read_text())
    assert plan["strongly_typed"] is True and plan["precision"] == "int8" and plan["min_compute_capability"] == "7.2"
    obs = dict(np.load(tiny_observations(tmp_path / "obs.npz", 1)))
    chunk = load_policy(b, backend="onnxruntime").predict_action_chunk({k: v[0] for k, v in obs.items()})
    assert np.isfinite(chunk).all()   # the TensorRT bundle's Q/DQ ONNX on ONNX Runtime CPU (its gate: above)


@pytest.mark.slow
def test_int8_onnx_with_calibration_is_gated_on_held_out_recorded_feeds(act_tiny_checkpoint, tmp_path):
    """--calibration: the last recorded feeds are kept out of the ranges and gated, in `validation.recorded`."""
    b = export(act_tiny_checkpoint, tmp_path / "b", "onnx", policy_type="act", precision="int8",
               calibration=str(tiny_observations(tmp_path / "obs.npz", 12)))
    m = _manifest(b)
    rec = m["validation"]["recorded"]["act"]
    assert rec["passed"] and rec["trials"] == 3   # 12 feeds: 3 held out
    assert any(line.startswith("ok   act@recorded.") for line in m["validation"]["lines"])
    q = m["quantization"]["act"]
    assert q["calibration"] == "observations" and q["calibration_samples"] == 9 and q["held_out"] == 3
    assert q["activations"] == "uint8"   # --target onnx: ONNX Runtime CPU's u8 x s8 kernels


@pytest.mark.slow
def test_pi0_int8_trt_passes_the_end_to_end_gate(tmp_path):
    """pi0's denoise graph passes per graph but its error compounds over the Euler steps (sampled_chunk
    cosine 0.9968 with TensorRT's symmetric int8): the fallback tightens the loop graph until the chunk passes."""
    b = export(tiny_pi0(tmp_path / "ckpt"), tmp_path / "b", "trt", precision="int8")
    m = _manifest(b)
    assert m["validation"]["passed"] is True and m["validation"]["graphs"]["sampled_chunk"]["passed"]
    rounds = m["quantization"]["denoise"]["rounds"]
    assert rounds[0]["gate"] == "pass" and len(rounds) >= 2
    assert "sampled_chunk" in rounds[1]["why"] and rounds[-1]["gate"] == "pass"


def test_fallback_picks_the_failing_graphs_then_the_loop_graphs_then_all():
    """Which graphs a round tightens, from the gate's lines (pure logic: no export)."""
    from types import SimpleNamespace

    from lerobot_edge.exporters.precision_fallback import LEVELS, _next_level, _to_tighten
    from lerobot_edge.policies.plan import ChunkCheck

    graphs = [SimpleNamespace(name=n) for n in ("vision", "prefix", "denoise")]
    plan = SimpleNamespace(graphs=graphs, end_to_end=ChunkCheck(lambda b, r: [], 0, loop_graphs=("denoise",)))
    ok = ["ok   vision.x: ...", "ok   prefix.k: ...", "ok   denoise.v: ..."]
    chunk = {"lines": [*ok, "FAIL sampled_chunk.action: cosine 0.99"]}
    assert set(_to_tighten(chunk, plan, {})) == {"denoise"}
    assert set(_to_tighten(chunk, plan, {"denoise": len(LEVELS)})) == {"vision", "prefix"}
    held = {"lines": [*ok, "FAIL prefix@recorded.k: cosine 0.99", "FAIL sampled_chunk.action: cosine 0.99"]}
    assert set(_to_tighten(held, plan, {})) == {"prefix"}   # a graph's own failure first
    assert _to_tighten(held, plan, {"prefix": len(LEVELS)}) == {}   # fp32 and still failing: nothing left
    assert _next_level({"check_cosine": 0.9996, "min_cosine": 0.9995}, 0) == 1   # a stricter check first
    assert _next_level({"check_cosine": 0.9976, "min_cosine": 0.9995}, 0) == len(LEVELS)   # missed its own bar


def test_openvino_bf16_graph_below_the_gate_goes_to_fp32(act_tiny_checkpoint, tmp_path, monkeypatch):
    """bf16 has no stricter conversion: a graph below the gate (forced here with a cosine bar only fp32 meets)
    is written uncompressed, recorded as mode fp32, compiled f32 by the backend, and the bundle ships; a bf16
    graph that passes keeps no record (the bf16 bundles of every other test)."""
    monkeypatch.setitem(targets.REDUCED_PRECISION_TOLERANCE, "min_cosine", 0.9999999)
    b = export(act_tiny_checkpoint, tmp_path / "b", "openvino", policy_type="act", precision="bf16")
    m = _manifest(b)
    q = m["quantization"]["act"]
    assert m["validation"]["passed"] is True and m["precision"] == "bf16"
    assert q["mode"] == "fp32" and [r["gate"] for r in q["rounds"]] == ["pass"]
    policy = load_policy(b, backend="openvino")
    assert policy.sessions["act"].precision_hint == "f32"


def _float_dtypes(onnx_file) -> set[int]:
    """The element types of an ONNX file's float initializers (1 = float32, 10 = float16)."""
    import onnx

    model = onnx.load(str(onnx_file), load_external_data=False)
    return {t.data_type for t in model.graph.initializer if t.data_type in (1, 10)}


@pytest.mark.parametrize("target", ["onnx", "trt"])
def test_fp16_graph_below_the_gate_goes_to_fp32(act_tiny_checkpoint, tmp_path, monkeypatch, target):
    """ONNX / TensorRT fp16: a graph below the gate (forced with a cosine bar only fp32 meets) ships as fp32
    ONNX (no float16 weight left), recorded as mode fp32; TensorRT's build plan for it is fp32 strongly typed
    (no FP16 flag, no islands), and ONNX Runtime loads it at fp32 (its TensorRT EP is not told fp16)."""
    monkeypatch.setitem(targets.REDUCED_PRECISION_TOLERANCE, "min_cosine", 0.9999999)
    b = export(act_tiny_checkpoint, tmp_path / "b", target, policy_type="act", precision="fp16")
    m = _manifest(b)
    q = m["quantization"]["act"]
    assert m["validation"]["passed"] is True and m["precision"] == "fp16"
    assert q["mode"] == "fp32" and [r["gate"] for r in q["rounds"]] == ["pass"]
    assert _float_dtypes(b / "act.onnx") == {1}
    if target == "trt":
        plan = json.loads((b / "trt" / "act.plan.json").read_text())
        assert plan["precision"] == "fp32" and plan["strongly_typed"] and "FP16" not in plan["builder_flags"]
    else:
        assert load_policy(b, backend="onnxruntime").sessions["act"].precision == "fp32"


def test_fp16_graph_that_passes_stays_fp16(act_tiny_checkpoint, tmp_path):
    """Without a forced failure the tiny ACT's fp16 ONNX passes the gate as it is: float16 weights, no record."""
    b = export(act_tiny_checkpoint, tmp_path / "b", "onnx", policy_type="act", precision="fp16")
    m = _manifest(b)
    assert m["validation"]["passed"] is True and "quantization" not in m
    assert 10 in _float_dtypes(b / "act.onnx")
    assert load_policy(b, backend="onnxruntime").sessions["act"].precision == "fp16"
