"""int8 Q/DQ graphs by ONNX Runtime's static quantizer (onnxruntime.quantization.quantize_static), for ONNX
Runtime CPU (VNNI / AMX) and strongly typed TensorRT (or ONNX Runtime's TensorRT provider):

- QDQ format, int8 symmetric weights (per output channel), bias left in fp32 (TensorRT fuses it; an int32 bias
  DQ it does not); activations per target (ACTIVATIONS): symmetric int8 (zero point 0, the only kind TensorRT's
  explicit quantization takes: `--target trt`) or asymmetric uint8 (`--target onnx`: ONNX Runtime CPU's u8 x s8
  kernels; with int8 activations only some convolutions fuse to QLinearConv: ACT aloha 10 of 21, no faster than
  fp32, against 21 of 21 and x2.2 with uint8, at the same cosine);
- only the ops with weights are quantized (MatMul, Gemm, Conv, ConvTranspose with a constant weight); the
  attention products of two activations and the fp32 islands' ones (the output projection:
  exporters/onnx_islands.py) stay fp32;
- activations calibrated on `options["calibration_samples"](graph name)` (real observations through the
  runtime's preprocessing: exporters' calibration flow), else on the graph's seeded sample inputs, with a
  warning: synthetic calibration sets ranges that real observations will not match.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..bundle import GraphSpec
from .onnx_precision import save_like

log = logging.getLogger(__name__)
QUANTIZED_OPS = ("MatMul", "Gemm", "Conv", "ConvTranspose")
ACTIVATIONS = ("int8", "uint8")   # symmetric int8 (TensorRT) | asymmetric uint8 (ONNX Runtime CPU)
SYNTHETIC_SAMPLES = 32
CHECK_COSINE = 0.9993   # against the fp32 graph on check_feeds: margin over the export gate's 0.999 (as ov_int8)
MAX_ROUNDS = 6
CHECK_FEEDS = 4   # calibration feeds the check runs on (the sensitivity probe: the first check feed)
SEEDED_CHECKS = (2, 2, 2, 1)   # batch sizes of the seeded sample inputs the check adds (the gate's: 2, then 1)
CHECK_SEED = 1    # not the gate's seed: the check predicts the gate, it does not replay it
MAX_PROBED = 64   # up to this many candidates, each node's cost is measured end to end


def calibration_feeds(spec: GraphSpec, options: dict) -> tuple[list[dict[str, np.ndarray]], list, str]:
    """Batch-1 feeds of graph `spec` -> (calibration feeds, held-out recorded feeds, source): the calibration
    flow's real ones (the last few held out of the ranges: exporters/calibration.held_out), else seeded
    synthetic draws (nothing held out)."""
    from .calibration import split_held_out

    samples = options.get("calibration_samples")
    if samples is not None:
        feeds = list(samples(spec.name))
        if feeds:
            calib, held = split_held_out([{i.name: np.asarray(f[i.name]) for i in spec.inputs} for f in feeds])
            return calib, held, "observations"
        log.warning("no calibration samples for graph %r; falling back to synthetic inputs", spec.name)
    sampler = options.get("sample_inputs")
    if sampler is None:
        raise ValueError(f"graph {spec.name!r}: int8 needs calibration inputs (--calibration) or the graph's "
                         "sample_inputs")
    log.warning("int8 calibration of graph %r on synthetic inputs; pass --calibration with recorded observations "
                "for accuracy on the robot", spec.name)
    rng = np.random.default_rng(0)
    return [sampler(rng, 1) for _ in range(SYNTHETIC_SAMPLES)], [], "synthetic"


def check_feeds(feeds: list, held: list, options: dict) -> list[dict[str, np.ndarray]]:
    """What the Q/DQ graph must reproduce the fp32 graph on: the first calibration feeds, the held-out recorded
    ones, and the graph's seeded sample inputs at the gate's batch sizes (a batch-2 output of a few values, e.g.
    TDMPC's value G (B,), has a cosine that batch-1 feeds never test: 1.0 on a scalar)."""
    sampler = options.get("sample_inputs")
    rng = np.random.default_rng(CHECK_SEED)
    seeded = [sampler(rng, b) for b in SEEDED_CHECKS] if sampler is not None else []
    return feeds[:int(options.get("int8_check_feeds", CHECK_FEEDS))] + held + seeded


class _Reader:
    """onnxruntime.quantization.CalibrationDataReader over a list of feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]):
        self.feeds, self.k = feeds, 0

    def get_next(self):
        if self.k >= len(self.feeds):
            return None
        self.k += 1
        return self.feeds[self.k - 1]

    def rewind(self):
        self.k = 0


def write_qdq(path: Path, spec: GraphSpec, options: dict, activations: str = "int8") -> dict:
    """Quantize the ONNX at `path` to int8 Q/DQ in place (same file names), activations as ACTIVATIONS; -> its
    record, also put in `options["quantization"][graph]` when given (the manifest's section): mode ("qdq", or
    "fp32" with `options["int8_mode"] == "fp32"`, the export gate's last fallback), activations, calibration
    source and sample count, the nodes quantized and kept fp32, the check's bar and cosine, and "requires":
    "vnni" for uint8 activations checked on a VNNI CPU (_cpu_terms). When the Q/DQ graph falls short of the check
    (`options["int8_check_cosine"]`, default CHECK_COSINE) against the fp32 graph on check_feeds, the quarter of
    quantized nodes that cost the most accuracy (_sensitivity_order, measured once) go back to fp32 per round,
    up to MAX_ROUNDS rounds."""
    import onnx

    from .onnx_islands import select_fp32_islands

    if activations not in ACTIVATIONS:
        raise ValueError(f"int8 activations {activations!r}: expected one of {ACTIVATIONS}")
    feeds, held, source = calibration_feeds(spec, options)
    model = onnx.load(str(path), load_external_data=False)
    islands = set(select_fp32_islands(model)["nodes"])
    weights = {t.name for t in model.graph.initializer}
    heavy = [n for n in model.graph.node if n.op_type in QUANTIZED_OPS]
    record = {"calibration": source, "calibration_samples": len(feeds), "held_out": len(held)}
    if options.get("int8_mode") == "fp32":
        record.update(mode="fp32", quantized=0, kept_fp32=sorted(n.name for n in heavy), fallback_fp32=[])
        return _publish(spec, options, record)
    # weight GEMMs / convolutions only: attention's activation x activation MatMuls stay fp32 (quantizing both
    # operands from a few calibration samples costs more accuracy than the gate allows)
    exclude = sorted(n.name for n in heavy if n.name in islands or len(n.input) < 2 or n.input[1] not in weights)
    quantize = [n.name for n in heavy if n.name not in exclude]
    check, bar = check_feeds(feeds, held, options), float(options.get("int8_check_cosine", CHECK_COSINE))
    scheme = {"activations": activations, **_cpu_terms(activations)}
    quantize, cos = _checked_rounds(path, model, feeds, check, quantize, exclude, bar, scheme)
    q = onnx.load(str(path), load_external_data=False)
    ops = [n.op_type for n in q.graph.node]
    record.update(mode="qdq", **scheme, quantize_linear=ops.count("QuantizeLinear"),
                  dequantize_linear=ops.count("DequantizeLinear"), quantized=len(quantize),
                  kept_fp32=sorted({n.name for n in heavy} - set(quantize)),
                  fallback_fp32=sorted(set(n.name for n in heavy) - set(quantize) - set(exclude)),
                  check_samples=len(check), min_cosine=bar, check_cosine=round(float(cos), 6))
    log.info("%s: int8 Q/DQ %s", path.name, {k: v for k, v in record.items() if "fp32" not in k})
    return _publish(spec, options, record)


def _cpu_terms(activations: str) -> dict:
    """What a uint8 graph's check holds on: x86 without VNNI sums u8 x s8 pairs in saturating int16, so a graph
    checked on a VNNI CPU is marked for VNNI CPUs only (the backend refuses it elsewhere), and one quantized on a
    CPU without uses 7-bit weights (ONNX Runtime's reduce_range: no saturation) and holds everywhere."""
    from ..backends.base import cpu_has_vnni

    if activations != "uint8":
        return {}
    return {"requires": "vnni"} if cpu_has_vnni(onednn=False) else {"reduce_range": True}


def _publish(spec: GraphSpec, options: dict, record: dict) -> dict:
    if options.get("quantization") is not None:
        options["quantization"][spec.name] = record
    return record


def _checked_rounds(path: Path, model, feeds, check, quantize: list[str], exclude: list[str], bar: float,
                    scheme: dict) -> tuple[list[str], float]:
    """Quantize `path` in place (`scheme`: activations, reduce_range), moving the costliest nodes back to fp32
    per round until the check's worst cosine reaches `bar` (or MAX_ROUNDS) -> (the nodes left quantized, the
    check's cosine)."""
    import onnx

    tmp = path.with_name(f".{path.stem}.qdq{os.getpid()}.onnx")
    cache = path.with_name(f".{path.stem}.ranges{os.getpid()}.json")
    reference, order = _run_all(path, model, check, False), None
    try:
        for round_ in range(MAX_ROUNDS + 1):
            _quantize(path, tmp, feeds, quantize, exclude, cache, scheme)
            qmodel = onnx.load(str(tmp), load_external_data=False)
            cos = _worst(model, reference, _run_all(tmp, qmodel, check, False))
            if cos >= bar or round_ == MAX_ROUNDS or not quantize:
                break
            if order is None:   # once: the nodes by how much accuracy each costs
                order = _sensitivity_order(path, tmp, model, qmodel, feeds, check, quantize, exclude, cache,
                                           reference, scheme)
            k = max(1, len(quantize) // 4)
            worst = sorted([n for n in order if n in quantize][:k])
            log.info("%s: Q/DQ cosine %.5f < %g; keeping %s in fp32", path.name, cos, bar, worst)
            quantize = [n for n in quantize if n not in worst]
            exclude = sorted({*exclude, *worst})
        save_like(onnx.load(str(tmp)), path)
    finally:
        for f in (tmp, tmp.with_name(tmp.name + ".data"), cache, path.with_name(_PROBE)):
            f.unlink(missing_ok=True)
    return quantize, cos


def _worst(model, reference, got) -> float:
    """The worst cosine over every graph output and check feed."""
    return min(_cos(reference[o.name][k], got[o.name][k]) for o in model.graph.output
               for k in range(len(reference[o.name])))


def _quantize(path: Path, out: Path, feeds, quantize: list[str], exclude: list[str], cache: Path,
              scheme: dict) -> None:
    """quantize_static with the module's settings and `scheme`'s activations; calibration ranges computed once,
    then read from `cache` (min/max: the same for either activation type)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    for f in (out, out.with_name(out.name + ".data")):
        f.unlink(missing_ok=True)
    symmetric = scheme["activations"] == "int8"
    quantize_static(str(path), str(out), None if cache.is_file() else _Reader(feeds), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=list(QUANTIZED_OPS), per_channel=True,
                    reduce_range=bool(scheme.get("reduce_range")),
                    activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8, weight_type=QuantType.QInt8,
                    nodes_to_quantize=quantize, nodes_to_exclude=exclude,
                    use_external_data_format=path.with_name(path.name + ".data").exists(),
                    calibrate_method=CalibrationMethod.MinMax, calibration_cache_path=str(cache),
                    extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True, "QuantizeBias": False})


_PROBE = ".probe.onnx"


def _run_all(path: Path, model, feeds, inside: bool) -> dict[str, list[np.ndarray]]:
    """The graph outputs of `model` (saved beside `path`, so its external data resolves) on each feed, and with
    `inside` also the data input and output of every quantizable node."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    have = {o.name for o in probe.graph.output}
    heavy = [n for n in probe.graph.node if n.op_type in QUANTIZED_OPS] if inside else []
    extra = [t for n in heavy for t in (n.input[0], n.output[0]) if t and t not in have]
    for name in dict.fromkeys(extra):
        probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    where = path.with_name(_PROBE)
    onnx.save_model(probe, str(where))
    session = ort.InferenceSession(str(where), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    runs = [session.run(names, f) for f in feeds]
    return {n: [r[k] for r in runs] for k, n in enumerate(names)}


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    den = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / den) if den > 0 else float(np.array_equal(a, b))


def _sensitivity_order(path: Path, tmp: Path, model, qmodel, feeds, check, quantize: list[str],
                       exclude: list[str], cache: Path, reference, scheme: dict) -> list[str]:
    """Quantized nodes, most costly first. Small graphs (<= MAX_PROBED candidates): each node quantized alone,
    ranked by the graph outputs' cosine (end to end: an error early in a conditioning path is amplified
    downstream, which no local measure sees); larger ones: by the error each node adds to its own output."""
    import onnx

    if len(quantize) > MAX_PROBED:
        inside = _run_all(path, model, check[:1], True)
        return _most_sensitive(model, quantize, inside, _run_all(tmp, qmodel, check[:1], True), len(quantize))
    cos = {}
    for node in quantize:
        _quantize(path, tmp, feeds, [node], sorted({*exclude, *quantize} - {node}), cache, scheme)
        cos[node] = _worst(model, reference, _run_all(tmp, onnx.load(str(tmp), load_external_data=False), check,
                                                      False))
    return sorted(cos, key=cos.get)


def _most_sensitive(model, quantized: list[str], reference, got, k: int) -> list[str]:
    """The `k` quantized nodes whose output error (1 - cosine against fp32) grows most over their input's."""
    def err(name):
        if name not in reference or name not in got:
            return 0.0
        return max(1.0 - _cos(a, b) for a, b in zip(reference[name], got[name]))

    nodes = {n.name: n for n in model.graph.node}
    added = {n: err(nodes[n].output[0]) - err(nodes[n].input[0]) for n in quantized}
    return sorted(added, key=added.get, reverse=True)[:k]
