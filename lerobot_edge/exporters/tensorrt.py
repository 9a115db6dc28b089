"""TensorRT target: the bundle carries the ONNX with its precision expressed in the graph (fp16 with fp32 islands
behind explicit Casts; int8 as Q/DQ), validated on ONNX Runtime here, plus `trt/<graph>.plan.json`; no engine,
since an engine is specific to the GPU and the TensorRT version. It is built where it runs (backends/tensorrt.py),
strongly typed from that graph; bf16 stays an fp32 graph built weakly typed with the plan's fp32 islands.

The plan records the fp32 islands as selected from the exported ONNX (exporters/onnx_islands.py): node names and
tensors, for the weakly typed path (bf16, or a TensorRT without strongly typed networks)."""

from __future__ import annotations

import dataclasses
import json

from ..backends.tensorrt_plan import DEFAULT_MAX_BATCH, build_plan
from ..bundle import BundleWriter, GraphSpec, sha256_file


def write_build_plan(spec: GraphSpec, writer: BundleWriter, precision: str, options: dict) -> GraphSpec:
    import onnx

    from .onnx_islands import select_fp32_islands
    from .onnx_precision import graph_precision, write_fp16
    from .onnx_qdq import write_qdq

    precision = graph_precision(spec, precision, options)   # fp32: the export gate's fallback kept it fp32
    path = writer.abspath(spec.file)
    islands = select_fp32_islands(onnx.load(str(path), load_external_data=False)) if precision != "fp32" else None
    if precision == "fp16":
        write_fp16(path, fp16_io=bool(options.get("fp16_io", False)))
    elif precision == "int8":
        write_qdq(path, spec, options, activations="int8")   # explicit quantization: symmetric int8 only
    plan = build_plan(spec, sha256_file(path), precision, islands=islands, typed=precision in ("fp16", "int8"),
                      max_batch=int(options.get("max_batch") or DEFAULT_MAX_BATCH))
    rel = f"trt/{spec.name}.plan.json"
    writer.abspath(rel).write_text(json.dumps(plan, indent=2) + "\n")
    writer.add(rel, "trt")
    return dataclasses.replace(spec, artifacts={**spec.artifacts, "trt": rel})
