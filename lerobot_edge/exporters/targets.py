"""Export targets: which artefacts each writes beside the ONNX graphs, which backend validates them, which
precisions it accepts, and the tolerance a precision is held to. Every bundle keeps its ONNX, so any backend
can run any bundle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..bundle import BundleWriter, GraphSpec

# Reduced precision is compared with the fp32 PyTorch reference: cosine >= 0.999 is the gate, the max abs error
# is measured and recorded (atol is a sanity cap in normalized units, not the gate).
REDUCED_PRECISION_TOLERANCE = {"atol": 1.0, "min_cosine": 0.999}


def tolerance_for(precision: str, fp32: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per-output tolerance of a graph at `precision` (fp32: the graph's own)."""
    if precision == "fp32":
        return fp32
    return {name: dict(REDUCED_PRECISION_TOLERANCE) for name in fp32}


def _convert_openvino(spec: GraphSpec, writer: BundleWriter, precision: str, options: dict) -> GraphSpec:
    from .openvino import convert_openvino

    return convert_openvino(spec, writer, precision, options)


def _convert_trt(spec: GraphSpec, writer: BundleWriter, precision: str, options: dict) -> GraphSpec:
    from .tensorrt import write_build_plan

    return write_build_plan(spec, writer, precision, options)


@dataclass(frozen=True)
class Target:
    name: str
    backend: str                      # the backend that validates (and by default runs) the bundle
    precisions: tuple[str, ...]
    # (graph spec, writer, precision, options) -> graph spec with target artefacts recorded
    convert: Callable[[GraphSpec, BundleWriter, str, dict], GraphSpec] | None = None
    validate_with: str | None = None  # when the target's own backend cannot run here at export (TensorRT)


TARGETS: dict[str, Target] = {
    "onnx": Target("onnx", "onnxruntime", ("fp32",)),
    "openvino": Target("openvino", "openvino", ("fp32", "bf16", "fp16", "int8"), _convert_openvino),
    "trt": Target("trt", "tensorrt", ("fp32", "fp16", "bf16", "int8", "fp8"), _convert_trt, "onnxruntime"),
}


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise ValueError(f"--target {name!r}: expected one of {sorted(TARGETS)}")
    return TARGETS[name]
