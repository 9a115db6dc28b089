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
SYNTHETIC_CHECKS = 8       # seeded sample inputs every int8 mode must also reproduce (the export gate's kind;
                           # 3 let TDMPC's encoder pass here at 0.99959 and fail the gate at 0.99709)
HELD_OUT = 8               # recorded feeds kept out of the calibration set to check the result on


def convert_openvino(spec: GraphSpec, writer: BundleWriter, precision: str, options: dict) -> GraphSpec:
    """Write openvino/<graph>.xml/.bin (weights fp16-compressed only for fp16/bf16 bundles). int8: the mode kept
    for the graph (w8a8, int8_weights or fp32) goes into `options["quantization"][graph]` when that dict is given."""
    import openvino as ov

    model = ov.convert_model(str(writer.abspath(spec.file)))
    if precision == "int8":
        from .ov_int8 import quantize_int8

        calibration, check, source = _feeds(spec, options)
        model, record = quantize_int8(ov, model, spec.name, calibration, check, source)
        options.setdefault("quantization", {})[spec.name] = record
    xml = f"openvino/{spec.name}.xml"
    ov.save_model(model, str(writer.abspath(xml)), compress_to_fp16=precision in ("fp16", "bf16"))
    writer.add(xml, "openvino")
    writer.add(xml[:-4] + ".bin", "openvino")
    return dataclasses.replace(spec, artifacts={**spec.artifacts, "openvino": xml})


def _feeds(spec: GraphSpec, options: dict) -> tuple[list[dict], list[dict], str]:
    """(calibration feeds, check feeds, where the calibration came from), batch 1 each."""
    sampler = options["sample_inputs"]
    check_rng = np.random.default_rng(1)
    check = [sampler(check_rng, 1) for _ in range(SYNTHETIC_CHECKS)]
    recorded = options.get("calibration_samples")
    feeds = list(recorded(spec.name)) if recorded is not None else []
    if feeds:
        held = min(HELD_OUT, len(feeds) // 4)
        return feeds[:len(feeds) - held] or feeds, feeds[len(feeds) - held:] + check, "observations"
    log.warning("int8 calibration of graph '%s' on synthetic inputs; pass calibration= (a LeRobot dataset or "
                "an .npz of observations) for ranges that match the robot's data", spec.name)
    rng = np.random.default_rng(0)
    return [sampler(rng, 1) for _ in range(SYNTHETIC_SAMPLES)], check, "synthetic"
