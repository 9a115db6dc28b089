"""What a target's artefacts are held to: the per-output tolerance of a graph at each precision. Which targets
exist, what they write and which backend validates them is `registry.TARGETS`."""

from __future__ import annotations

from ..bundle import BundleWriter, GraphSpec
from ..registry import TargetSpec, load

# Reduced precision is compared with the fp32 PyTorch reference: cosine >= 0.999 is the gate, the max abs error
# is measured and recorded (atol is a sanity cap in normalized units, not the gate).
REDUCED_PRECISION_TOLERANCE = {"atol": 1.0, "min_cosine": 0.999}


def tolerance_for(precision: str, fp32: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per-output tolerance of a graph at `precision` (fp32: the graph's own)."""
    if precision == "fp32":
        return fp32
    return {name: dict(REDUCED_PRECISION_TOLERANCE) for name in fp32}


def convert(target: TargetSpec, spec: GraphSpec, writer: BundleWriter, precision: str, options: dict) -> GraphSpec:
    """The target's artefacts of one exported ONNX graph (OpenVINO IR, a TensorRT build plan); ONNX: none."""
    if target.convert is None:
        return spec
    return load(target.convert)(spec, writer, precision, options)
