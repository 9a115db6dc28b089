"""TensorRT build plans, as plain data: what the engine builder on the device needs besides the validated ONNX
(precision, optimization profiles, workspace, builder level, the layers kept in fp32 under reduced precision),
and the cache key of a built engine. Torch-free and TensorRT-free, so it is tested everywhere.
"""

from __future__ import annotations

import hashlib
import json

from ..bundle import GraphSpec
PLAN_FORMAT = "lerobot-edge-trt-plan"
PLAN_VERSION = 1
DEFAULT_MAX_BATCH = 8
DEFAULT_WORKSPACE = 2 << 30
# Layers that overflow or lose too much in fp16 (norms after attention, softmax) and the final projection;
# matched against TensorRT layer names (which carry the ONNX node names) and layer types.
FP32_ISLAND_PATTERNS = ["LayerNorm", "layer_norm", "RMSNorm", "rms_norm", "ReduceMean", "Softmax", "softmax",
                        "action_head", "action_out_proj"]


# other dynamic axes are sequence lengths (GR00T's prompt "seq" and its image tokens "img_seq"): opt / max tokens
SEQ_OPT, SEQ_MAX = 256, 4096


def profile(spec: GraphSpec, max_batch: int = DEFAULT_MAX_BATCH) -> dict[str, dict[str, list[int]]]:
    """One optimization profile: the "batch" axis from 1 (opt 1: the robot's batch) to `max_batch`, any other
    dynamic axis (a sequence length) from 1 to SEQ_MAX, opt SEQ_OPT."""
    shapes = {}
    for i in spec.inputs:
        lo = [1 if isinstance(d, str) else d for d in i.shape]
        opt = [(1 if d == "batch" else SEQ_OPT) if isinstance(d, str) else d for d in i.shape]
        hi = [(max_batch if d == "batch" else SEQ_MAX) if isinstance(d, str) else d for d in i.shape]
        shapes[i.name] = {"min": lo, "opt": opt, "max": hi}
    return shapes


def build_plan(spec: GraphSpec, onnx_sha256: str, precision: str, *, max_batch: int = DEFAULT_MAX_BATCH,
               workspace: int = DEFAULT_WORKSPACE, optimization_level: int = 3) -> dict:
    reduced = precision in ("fp16", "bf16")
    return {
        "format": PLAN_FORMAT, "version": PLAN_VERSION, "graph": spec.name, "onnx": spec.file,
        "onnx_sha256": onnx_sha256, "precision": precision,
        # fp32 needs no typing; reduced precision uses per-layer constraints, which TensorRT 10.3 (JetPack 6)
        # supports as well as newer releases (a strongly typed fp16 ONNX is not produced yet)
        "strongly_typed": precision == "fp32",
        "builder_flags": {"fp16": ["FP16"], "bf16": ["BF16"], "int8": ["INT8", "FP16"], "fp8": ["FP8", "FP16"]}
        .get(precision, []) + (["OBEY_PRECISION_CONSTRAINTS"] if reduced else []),
        "fp32_layers": FP32_ISLAND_PATTERNS if reduced else [],
        "profiles": [profile(spec, max_batch)],
        "workspace_bytes": workspace, "builder_optimization_level": optimization_level,
        "int8_calibration": "calibration.cache" if precision == "int8" else None,
        "cuda_graph": True,
    }


def plan_hash(plan: dict) -> str:
    return hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()


def keep_fp32(layer_name: str, layer_type: str, patterns: list[str]) -> bool:
    """Whether a TensorRT layer belongs to an fp32 island of the plan."""
    return any(p in layer_name or p in layer_type for p in patterns)


def engine_cache_key(onnx_sha256: str, plan: dict, trt_version: str, cuda_version: str, gpu_name: str,
                     compute_capability: str) -> str:
    """Everything an engine depends on; any change means a rebuild, never a stale engine."""
    parts = [onnx_sha256, plan_hash(plan), trt_version, cuda_version, gpu_name, compute_capability]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
