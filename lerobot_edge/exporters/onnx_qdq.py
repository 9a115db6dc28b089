"""int8 Q/DQ graphs by ONNX Runtime's static quantizer (onnxruntime.quantization.quantize_static), one format for
ONNX Runtime (CPU VNNI / AMX, CUDA) and strongly typed TensorRT:

- QDQ format, int8 symmetric weights (per output channel) and activations (zero point 0: what TensorRT's
  explicit quantization takes), bias left in fp32 (TensorRT fuses it; an int32 bias DQ it does not);
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
SYNTHETIC_SAMPLES = 32


def calibration_feeds(spec: GraphSpec, options: dict) -> list[dict[str, np.ndarray]]:
    """Batch-1 feeds of graph `spec`: the calibration flow's real ones, else seeded synthetic draws."""
    samples = options.get("calibration_samples")
    if samples is not None:
        feeds = list(samples(spec.name))
        if feeds:
            return [{i.name: np.asarray(f[i.name]) for i in spec.inputs} for f in feeds]
        log.warning("no calibration samples for graph %r; falling back to synthetic inputs", spec.name)
    sampler = options.get("sample_inputs")
    if sampler is None:
        raise ValueError(f"graph {spec.name!r}: int8 needs calibration inputs (--calibration) or the graph's "
                         "sample_inputs")
    log.warning("int8 calibration of graph %r on synthetic inputs; pass --calibration with recorded observations "
                "for accuracy on the robot", spec.name)
    rng = np.random.default_rng(0)
    return [sampler(rng, 1) for _ in range(SYNTHETIC_SAMPLES)]


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


def write_qdq(path: Path, spec: GraphSpec, options: dict) -> dict:
    """Quantize the ONNX at `path` to int8 Q/DQ in place (same file names); -> a summary (ops quantized,
    calibration source and sample count)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from .onnx_islands import select_fp32_islands

    feeds = calibration_feeds(spec, options)
    model = onnx.load(str(path), load_external_data=False)
    islands = set(select_fp32_islands(model)["nodes"])
    weights = {t.name for t in model.graph.initializer}
    heavy = [n for n in model.graph.node if n.op_type in QUANTIZED_OPS]
    # weight GEMMs / convolutions only: attention's activation x activation MatMuls stay fp32 (quantizing both
    # operands from a few calibration samples costs more accuracy than the gate allows)
    exclude = sorted(n.name for n in heavy if n.name in islands or len(n.input) < 2 or n.input[1] not in weights)
    quantize = sorted(n.name for n in heavy if n.name not in exclude)
    external = path.with_name(path.name + ".data").exists()
    tmp = path.with_name(f".{path.stem}.qdq{os.getpid()}.onnx")
    try:
        quantize_static(str(path), str(tmp), _Reader(feeds), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(QUANTIZED_OPS), per_channel=True, reduce_range=False,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, nodes_to_quantize=quantize,
                        nodes_to_exclude=exclude,
                        use_external_data_format=external, calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                                       "QuantizeBias": False})
        save_like(onnx.load(str(tmp)), path)
    finally:
        for f in (tmp, tmp.with_name(tmp.name + ".data")):
            f.unlink(missing_ok=True)
    q = onnx.load(str(path), load_external_data=False)
    ops = [n.op_type for n in q.graph.node]
    summary = {"quantize_linear": ops.count("QuantizeLinear"), "dequantize_linear": ops.count("DequantizeLinear"),
               "excluded": exclude, "calibration": "observations" if options.get("calibration_samples") else
               "synthetic", "calibration_samples": len(feeds)}
    log.info("%s: int8 Q/DQ %s", path.name, summary)
    return summary
