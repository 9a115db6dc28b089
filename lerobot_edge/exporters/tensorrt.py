"""TensorRT target: the bundle carries the validated ONNX plus `trt/<graph>.plan.json`; no engine, since an
engine is specific to the GPU and the TensorRT version. It is built where it runs (backends/tensorrt.py).

The plan records the graph's fp32 islands as selected from the ONNX itself (exporters/onnx_islands.py): the
node names and tensors that stay fp32 under reduced precision."""

from __future__ import annotations

import dataclasses
import json

from ..backends.tensorrt_plan import DEFAULT_MAX_BATCH, build_plan
from ..bundle import BundleWriter, GraphSpec, sha256_file


def write_build_plan(spec: GraphSpec, writer: BundleWriter, precision: str, options: dict) -> GraphSpec:
    import onnx

    from .onnx_islands import select_fp32_islands

    path = writer.abspath(spec.file)
    islands = select_fp32_islands(onnx.load(str(path), load_external_data=False)) if precision != "fp32" else None
    plan = build_plan(spec, sha256_file(path), precision, islands=islands,
                      max_batch=int(options.get("max_batch") or DEFAULT_MAX_BATCH))
    rel = f"trt/{spec.name}.plan.json"
    writer.abspath(rel).write_text(json.dumps(plan, indent=2) + "\n")
    writer.add(rel, "trt")
    return dataclasses.replace(spec, artifacts={**spec.artifacts, "trt": rel})
