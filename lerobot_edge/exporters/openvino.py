"""ONNX graph -> OpenVINO IR (xml + bin) in the bundle's `openvino/` folder; int8 through NNCF
(exporters/ov_int8.py), calibrated on the graph feeds the runtime produced from real observations
(`options["calibration_samples"]`, exporters/calibration.py) or, without them, on seeded sample inputs."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from ..bundle import BundleWriter, GraphSpec

log = logging.getLogger(__name__)
SYNTHETIC_SAMPLES = 32     # calibration feeds drawn from the graph's sampler when no data is given
# batch sizes of the seeded sample inputs every int8 mode must also reproduce (the export gate's kind: batch 2,
# then 1; 3 batch-1 draws let TDMPC's encoder pass here at 0.99959 and fail the gate at 0.99709, and only a
# batch-2 draw tests the cosine of TDMPC's value G (B,), 1.0 on a scalar)
SYNTHETIC_CHECKS = (2, 2, 2, 1, 1, 1, 1, 1)


def convert_openvino(spec: GraphSpec, writer: BundleWriter, precision: str, options: dict) -> GraphSpec:
    """Write openvino/<graph>.xml/.bin (weights fp16-compressed only for fp16/bf16 bundles). int8: the mode kept
    for the graph (w8a8, int8_weights or fp32) goes into `options["quantization"][graph]` when that dict is given;
    fp16/bf16 with options["graph_precision"] == "fp32" (the gate's fallback): the graph uncompressed, recorded
    there as mode "fp32" (the backend compiles it with an f32 hint)."""
    import openvino as ov

    model = ov.convert_model(str(writer.abspath(spec.file)))
    if precision == "int8":
        from .ov_int8 import quantize_int8

        from .ov_int8 import CHECK_COSINE, MODES

        calibration, check, source = _feeds(spec, options)
        # the export gate's fallback (exporters/precision_fallback.py): a stricter check, or no int8 mode at all
        modes = () if options.get("int8_mode") == "fp32" else MODES
        model, record = quantize_int8(ov, model, spec.name, calibration, check, source,
                                      float(options.get("int8_check_cosine", CHECK_COSINE)), modes)
        options.setdefault("quantization", {})[spec.name] = record
    from .onnx_precision import graph_precision

    reduced = graph_precision(spec, precision, options) in ("fp16", "bf16")   # fp32: the export gate's fallback
    xml = f"openvino/{spec.name}.xml"
    ov.save_model(model, str(writer.abspath(xml)), compress_to_fp16=reduced)
    writer.add(xml, "openvino")
    writer.add(xml[:-4] + ".bin", "openvino")
    return dataclasses.replace(spec, artifacts={**spec.artifacts, "openvino": xml})


def _feeds(spec: GraphSpec, options: dict) -> tuple[list[dict], list[dict], str]:
    """(calibration feeds, check feeds, where the calibration came from), batch 1 each."""
    from .calibration import split_held_out

    sampler = options["sample_inputs"]
    check_rng = np.random.default_rng(1)
    check = [sampler(check_rng, b) for b in SYNTHETIC_CHECKS]
    recorded = options.get("calibration_samples")
    feeds = list(recorded(spec.name)) if recorded is not None else []
    if feeds:
        calibration, held = split_held_out(feeds)
        return calibration, held + check, "observations"
    log.warning("int8 calibration of graph '%s' on synthetic inputs; pass calibration= (a LeRobot dataset or "
                "an .npz of observations) for ranges that match the robot's data", spec.name)
    rng = np.random.default_rng(0)
    return [sampler(rng, 1) for _ in range(SYNTHETIC_SAMPLES)], check, "synthetic"
