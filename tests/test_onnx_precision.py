"""Precision expressed in the ONNX graph (exporters/onnx_precision.py, exporters/onnx_qdq.py), on every tiny-zoo
policy: each exported graph converted to fp16 (fp32 islands behind Casts, fp32 IO) and to int8 Q/DQ, its
structure checked tensor by tensor, and run on ONNX Runtime CPU against the fp32 PyTorch outputs the bundle
stored for selftest (validation/<graph>.npz). The export's own gate on these graphs: test_targets.py."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import tiny_zoo
from lerobot_edge.accuracy import cosine
from lerobot_edge.bundle import Bundle
from lerobot_edge.exporters.onnx_islands import select_fp32_islands
from lerobot_edge.exporters.onnx_precision import FLOAT, FLOAT16, check_fp16_structure, write_fp16
from lerobot_edge.exporters.onnx_qdq import CHECK_COSINE, QUANTIZED_OPS, write_qdq


def _graphs(policy, request, tmp_path):
    """(spec, a private copy of its ONNX, the stored torch inputs / outputs) per graph of the tiny bundle."""
    src = tiny_zoo.tiny_bundle(policy, request)
    for spec in Bundle.open(src).graphs.values():
        d = tmp_path / spec.name
        d.mkdir()
        for f in src.glob(spec.file + "*"):
            shutil.copy(f, d)
        with np.load(src / "validation" / f"{spec.name}.npz") as z:
            ins = {k[6:]: z[k] for k in z.files if k.startswith("input.")}
            outs = {k[7:]: z[k] for k in z.files if k.startswith("output.")}
        yield spec, d / spec.file, ins, outs


def _run(path, ins):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, ins)))


def _cos(a, b) -> float:
    return cosine(np.asarray(a, np.float64), np.asarray(b, np.float64))


@pytest.mark.parametrize("policy", tiny_zoo.POLICY_TYPES)
def test_fp16_graphs_keep_their_islands_in_fp32_and_pass_the_gate(policy, request, tmp_path):
    for spec, path, ins, want in _graphs(policy, request, tmp_path):
        islands = set(select_fp32_islands(onnx.load(str(path), load_external_data=False))["nodes"])
        report = write_fp16(path)
        model = onnx.load(str(path), load_external_data=False)
        assert report["problems"] == [] and report["fp16_tensors"] > 0, (spec.name, report["problems"][:5])
        # re-checked from the file: the islands kept their names and read / write fp32 only
        assert islands <= {n.name for n in model.graph.node}
        assert check_fp16_structure(model, islands)["problems"] == []
        assert FLOAT16 not in {v.type.tensor_type.elem_type for v in (*model.graph.input, *model.graph.output)}
        got = _run(path, ins)
        for name, ref in want.items():
            assert got[name].dtype == np.float32 and _cos(got[name], ref) >= 0.999, (policy, spec.name, name)


def test_weights_outside_the_islands_are_fp16(act_tiny_bundle, tmp_path):
    for f in act_tiny_bundle.glob("act.onnx*"):
        shutil.copy(f, tmp_path)
    write_fp16(tmp_path / "act.onnx")
    model = onnx.load(str(tmp_path / "act.onnx"))
    types = {t.name: t.data_type for t in model.graph.initializer}
    conv_weights = [n.input[1] for n in model.graph.node if n.op_type == "Conv"]
    assert conv_weights and all(types[w] == FLOAT16 for w in conv_weights)
    norms = [n for n in model.graph.node if n.op_type == "LayerNormalization"]
    assert norms and all(types.get(n.input[1], FLOAT) == FLOAT for n in norms)   # gamma stays fp32


@pytest.mark.parametrize("policy", tiny_zoo.POLICY_TYPES)
def test_int8_qdq_graphs_are_symmetric_per_channel_and_run_on_the_cpu(policy, request, tmp_path, monkeypatch):
    # the structure and the CPU run; the fp32 fallback rounds are the export gate's business (test_fallback_...)
    monkeypatch.setattr("lerobot_edge.exporters.onnx_qdq.MAX_ROUNDS", 0)
    for spec, path, ins, want in _graphs(policy, request, tmp_path):
        axis = {i.name: next(k for k, d in enumerate(i.shape) if isinstance(d, str)) for i in spec.inputs}
        feeds = [{k: np.take(v, [b], axis=axis[k]) for k, v in ins.items()} for b in range(2)]   # batch-1 feeds
        summary = write_qdq(path, spec, {"calibration_samples": lambda name: feeds if name == spec.name else []})
        assert summary["calibration"] == "observations" and summary["calibration_samples"] == len(feeds)
        model = onnx.load(str(path))
        inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
        qs = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
        heavy = [n for n in model.graph.node if n.op_type in ("MatMul", "Gemm", "Conv", "ConvTranspose")]
        assert summary["quantized"] + len(summary["kept_fp32"]) == len(heavy)
        if not qs:   # nothing left to quantize (a graph of only its output projection)
            assert summary["quantized"] == 0, (policy, spec.name)
            continue
        for n in qs:
            zp = inits.get(n.input[2]) if len(n.input) > 2 else None
            assert zp is None or (zp.dtype == np.int8 and not zp.any()), (policy, n.name)   # symmetric int8
        per_channel = [n for n in qs if np.asarray(inits.get(n.input[1], 0)).size > 1]
        assert per_channel, f"{policy}/{spec.name}: no per-channel weight scale"
        got = _run(path, ins)   # ONNX Runtime CPU runs the Q/DQ graph (VNNI where the CPU has it)
        for name, ref in want.items():
            assert _cos(got[name], ref) >= 0.99, (policy, spec.name, name, _cos(got[name], ref))
        assert summary["check_cosine"] >= 0.99


def test_onnx_target_int8_has_uint8_activations_and_every_conv_fuses_on_the_cpu(act_tiny_bundle, tmp_path):
    """--target onnx's int8 is for ONNX Runtime CPU: asymmetric uint8 activations beside int8 symmetric
    per-channel weights, which ORT's optimizer turns into integer kernels, every quantized Conv a QLinearConv
    (with int8 activations ACT aloha got 10 of 21, no faster than fp32; uint8: 21 of 21, x2.2)."""
    for f in act_tiny_bundle.glob("act.onnx*"):
        shutil.copy(f, tmp_path)
    spec = Bundle.open(act_tiny_bundle).graphs["act"]
    ins, want = _stored(act_tiny_bundle)
    feeds = [{k: v[b:b + 1] for k, v in ins.items()} for b in range(2)]
    path = tmp_path / "act.onnx"
    summary = write_qdq(path, spec, {"calibration_samples": lambda name: feeds}, activations="uint8")
    assert summary["mode"] == "qdq" and summary["activations"] == "uint8"
    assert summary.get("requires") == "vnni" or summary.get("reduce_range") is True   # where its check holds
    model = onnx.load(str(path))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    dq = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    weight_zps = [inits[n.input[2]] for n in dq if n.input[0] in inits]
    act_zps = [inits[n.input[2]] for n in dq if n.input[0] not in inits]
    assert weight_zps and all(z.dtype == np.int8 and not z.any() for z in weight_zps)
    assert act_zps and all(z.dtype == np.uint8 for z in act_zps)
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "opt.onnx"), load_external_data=False).graph.node]
    quantized_convs = [n for n in onnx.load(str(path), load_external_data=False).graph.node
                       if n.op_type == "Conv" and n.name not in summary["kept_fp32"]]
    assert quantized_convs and ops.count("QLinearConv") == len(quantized_convs), ops.count("QLinearConv")
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, ins)))
    for name, ref in want.items():
        assert _cos(got[name], ref) >= 0.99, (name, _cos(got[name], ref))


def test_onnxruntime_refuses_an_int8_graph_where_its_check_does_not_hold(act_tiny_bundle, monkeypatch):
    """A uint8-activation graph is not TensorRT's int8, and one checked with VNNI saturates on a CPU without it
    (simulated: cpu_has_vnni reports none): a clear error at load, never silently wrong actions."""
    from lerobot_edge.backends.onnxruntime import OnnxRuntimeBackend
    from lerobot_edge.errors import BackendUnavailableError

    bundle = Bundle.open(act_tiny_bundle)
    graph = bundle.graphs["act"]
    bundle.manifest["quantization"] = {"act": {"mode": "qdq", "activations": "uint8", "requires": "vnni"}}
    with pytest.raises(BackendUnavailableError, match="--target trt --precision int8"):
        OnnxRuntimeBackend().load(graph, bundle, {"providers": ["TensorrtExecutionProvider", "CPUExecutionProvider"]})
    monkeypatch.setattr("lerobot_edge.backends.onnxruntime.cpu_has_vnni", lambda onednn=True: False)
    with pytest.raises(BackendUnavailableError, match="no avx512_vnni"):
        OnnxRuntimeBackend().load(graph, bundle, {})
    bundle.manifest["quantization"]["act"] = {"mode": "qdq", "activations": "uint8", "reduce_range": True}
    assert OnnxRuntimeBackend().load(graph, bundle, {}).run(_stored(act_tiny_bundle)[0])   # 7-bit weights: anywhere


def _stored(bundle_dir, graph: str = "act") -> tuple[dict, dict]:
    """The torch inputs and outputs the bundle stored for selftest (validation/<graph>.npz)."""
    with np.load(bundle_dir / "validation" / f"{graph}.npz") as z:
        return ({k[6:]: z[k] for k in z.files if k.startswith("input.")},
                {k[7:]: z[k] for k in z.files if k.startswith("output.")})


def test_int8_without_calibration_samples_falls_back_to_synthetic_with_a_warning(act_tiny_bundle, tmp_path, caplog,
                                                                                 monkeypatch):
    monkeypatch.setattr("lerobot_edge.exporters.onnx_qdq.SYNTHETIC_SAMPLES", 4)   # a few draws keep it quick
    for f in act_tiny_bundle.glob("act.onnx*"):
        shutil.copy(f, tmp_path)
    spec = Bundle.open(act_tiny_bundle).graphs["act"]
    with np.load(act_tiny_bundle / "validation" / "act.npz") as z:
        ins = {k[6:]: z[k][:1] for k in z.files if k.startswith("input.")}
    summary = write_qdq(tmp_path / "act.onnx", spec, {"sample_inputs": lambda rng, b: ins})
    assert summary["calibration"] == "synthetic" and summary["calibration_samples"] == 4
    assert "synthetic inputs" in caplog.text


def test_fallback_keeps_the_costliest_nodes_in_fp32_until_the_check_passes(request, tmp_path):
    """SAC's actor quantized whole misses the check (cosine ~0.9994 on these feeds); the nodes that cost the most,
    measured end to end, go back to fp32 until it passes."""
    spec, path, ins, want = next(_graphs("sac", request, tmp_path))
    axis = {i.name: next(k for k, d in enumerate(i.shape) if isinstance(d, str)) for i in spec.inputs}
    feeds = [{k: np.take(v, [b], axis=axis[k]) for k, v in ins.items()} for b in range(2)]
    model = onnx.load(str(path), load_external_data=False)
    islands, weights = set(select_fp32_islands(model)["nodes"]), {t.name for t in model.graph.initializer}
    candidates = {n.name for n in model.graph.node if n.op_type in QUANTIZED_OPS and n.input[1] in weights} - islands
    summary = write_qdq(path, spec, {"calibration_samples": lambda name: feeds})
    fell_back = candidates & set(summary["kept_fp32"])
    assert fell_back and summary["quantized"] == len(candidates) - len(fell_back)
    assert summary["check_cosine"] >= CHECK_COSINE, summary["check_cosine"]
