"""Export targets: which artefacts each writes beside the ONNX graphs, which backend validates them, and
which precisions it accepts. Every bundle keeps its ONNX, so any backend can run any bundle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..bundle import BundleWriter, GraphSpec


@dataclass(frozen=True)
class Target:
    name: str
    backend: str                      # the backend that validates (and by default runs) the bundle
    precisions: tuple[str, ...]
    # (graph spec, writer, precision, options) -> graph spec with target artefacts recorded
    convert: Callable[[GraphSpec, BundleWriter, str, dict], GraphSpec] | None = None
    backend_options: Callable[[str], dict] | None = None  # precision -> options used for validation


TARGETS: dict[str, Target] = {
    "onnx": Target("onnx", "onnxruntime", ("fp32",)),
}


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise ValueError(f"--target {name!r}: expected one of {sorted(TARGETS)}")
    return TARGETS[name]
