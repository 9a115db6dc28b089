"""TensorRT target: the bundle carries the validated ONNX plus `trt/<graph>.plan.json`; no engine, since an
engine is specific to the GPU and the TensorRT version. It is built where it runs (backends/tensorrt.py)."""

from __future__ import annotations

import dataclasses
import json

from ..backends.tensorrt_plan import DEFAULT_MAX_BATCH, build_plan
from ..bundle import BundleWriter, GraphSpec, sha256_file


def write_build_plan(spec: GraphSpec, writer: BundleWriter, precision: str, options: dict) -> GraphSpec:
    onnx_sha = sha256_file(writer.abspath(spec.file))
    plan = build_plan(spec, onnx_sha, precision, max_batch=int(options.get("max_batch") or DEFAULT_MAX_BATCH))
    rel = f"trt/{spec.name}.plan.json"
    writer.abspath(rel).write_text(json.dumps(plan, indent=2) + "\n")
    writer.add(rel, "trt")
    return dataclasses.replace(spec, artifacts={**spec.artifacts, "trt": rel})
