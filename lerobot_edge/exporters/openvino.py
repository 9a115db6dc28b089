"""ONNX graph -> OpenVINO IR (xml + bin) in the bundle's `openvino/` folder; int8 by NNCF post-training
quantization calibrated on observations."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from ..bundle import BundleWriter, GraphSpec
from ..errors import BackendUnavailableError

log = logging.getLogger(__name__)
CALIBRATION_SAMPLES = 32


def convert_openvino(spec: GraphSpec, writer: BundleWriter, precision: str, options: dict) -> GraphSpec:
    """Write openvino/<graph>.xml/.bin (weights fp16-compressed only for fp16/bf16 bundles)."""
    import openvino as ov

    model = ov.convert_model(str(writer.abspath(spec.file)))
    if precision == "int8":
        model = _quantize(model, spec, options)
    xml = f"openvino/{spec.name}.xml"
    ov.save_model(model, str(writer.abspath(xml)), compress_to_fp16=precision in ("fp16", "bf16"))
    writer.add(xml, "openvino")
    writer.add(xml[:-4] + ".bin", "openvino")
    return dataclasses.replace(spec, artifacts={**spec.artifacts, "openvino": xml})


def _quantize(model, spec: GraphSpec, options: dict):
    """NNCF PTQ. Calibration: `calibration` .npz of graph inputs (keys = input names, leading axis = samples)
    when given, else the graph's seeded sample inputs (with a warning: real observations calibrate better)."""
    try:
        import nncf
    except ImportError as e:
        raise BackendUnavailableError("int8 for OpenVINO needs NNCF: pip install nncf") from e
    samples = _calibration_samples(spec, options)
    dataset = nncf.Dataset(samples)
    return nncf.quantize(model, dataset, subset_size=len(samples))


def _calibration_samples(spec: GraphSpec, options: dict) -> list[dict[str, np.ndarray]]:
    path = options.get("calibration")
    if path:
        with np.load(path, allow_pickle=False) as z:
            n = min(len(z[i.name]) for i in spec.inputs)
            return [{i.name: z[i.name][k: k + 1] for i in spec.inputs} for k in range(n)]
    sampler = options.get("sample_inputs")
    log.warning("int8 calibration on synthetic inputs; pass --calibration with recorded observations for accuracy")
    rng = np.random.default_rng(0)
    return [sampler(rng, 1) for _ in range(CALIBRATION_SAMPLES)]
