"""TensorRT build plans, as plain data: what the engine builder on the device needs besides the ONNX
(precision, how it is typed, optimization profiles, workspace, builder level, the fp32 islands), the GPU it
needs, and the cache key of a built engine. Torch-free, TensorRT-free and onnx-free, so it is tested everywhere.

Precision is expressed in the graph where it can be (DESIGN, Targets): fp32, fp16 (an fp16 ONNX whose norms,
softmax and output projection stay fp32 behind explicit Casts) and int8 (Q/DQ nodes) build *strongly typed*;
bf16 builds weakly typed from the fp32 ONNX with the BF16 flag and per-layer fp32 constraints on the islands,
which is also the path a TensorRT without strongly typed networks takes for every precision.
"""

from __future__ import annotations

import hashlib
import json
import re

from ..bundle import GraphSpec
from ..errors import PrecisionUnsupportedError

PLAN_FORMAT = "lerobot-edge-trt-plan"
PLAN_VERSION = 2
DEFAULT_MAX_BATCH = 8
DEFAULT_WORKSPACE = 2 << 30
# precisions whose ONNX carries its types (an fp16 graph with fp32 islands; Q/DQ for int8/fp8)
GRAPH_TYPED = ("fp32", "fp16", "int8", "fp8")
# builder flags of the weakly typed path (bf16; every precision on a TensorRT without strongly typed networks)
WEAK_FLAGS = {"fp32": [], "fp16": ["FP16"], "bf16": ["BF16"], "int8": ["INT8", "FP16"], "fp8": ["FP8", "FP16"]}
# the oldest GPU architecture (compute capability) with the tensor cores a precision needs:
# bf16 Ampere (8.0), int8 Xavier / Turing (7.2 / 7.5), fp8 Ada / Hopper / Thor (8.9): Orin (8.7) has no fp8
MIN_COMPUTE_CAPABILITY = {"bf16": (8, 0), "int8": (7, 2), "fp8": (8, 9)}
NO_ISLANDS = {"nodes": [], "tensors": [], "ops": {}, "rules": {}}


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


def build_plan(spec: GraphSpec, onnx_sha256: str, precision: str, *, islands: dict | None = None,
               typed: bool = False, max_batch: int = DEFAULT_MAX_BATCH, workspace: int = DEFAULT_WORKSPACE,
               optimization_level: int = 3) -> dict:
    """The plan of one graph. `islands`: exporters/onnx_islands.select_fp32_islands of the graph (node names
    and their output tensors kept in fp32; empty at fp32). `typed`: the ONNX carries `precision` (an fp16
    graph, Q/DQ nodes), so the engine is built strongly typed; else weakly typed with builder flags."""
    reduced = precision != "fp32"
    return {
        "format": PLAN_FORMAT, "version": PLAN_VERSION, "graph": spec.name, "onnx": spec.file,
        "onnx_sha256": onnx_sha256, "precision": precision,
        "strongly_typed": precision == "fp32" or (typed and precision in GRAPH_TYPED),
        "builder_flags": WEAK_FLAGS[precision] + (["OBEY_PRECISION_CONSTRAINTS"] if reduced else []),
        "fp32_islands": dict(islands or NO_ISLANDS) if reduced else dict(NO_ISLANDS),
        "min_compute_capability": ".".join(map(str, MIN_COMPUTE_CAPABILITY.get(precision, (0, 0)))),
        "profiles": [profile(spec, max_batch)],
        "workspace_bytes": workspace, "builder_optimization_level": optimization_level,
        "cuda_graph": True,
    }


def plan_hash(plan: dict) -> str:
    return hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()


_SUFFIX = re.compile(r"^(.*)_\d+$")


def keep_fp32(layer_name: str, output_names: list[str] | tuple[str, ...], islands: dict) -> bool:
    """Whether a TensorRT layer belongs to an fp32 island. The ONNX parser names a node's layer after the node
    (a second layer of one node gets `<node>_<n>`), and the node's last layer writes the node's output tensors,
    which keep their ONNX names: a layer matches by its name, its base name, or an output tensor."""
    nodes, tensors = islands.get("nodes", ()), islands.get("tensors", ())
    if layer_name in nodes or any(o in tensors for o in output_names):
        return True
    m = _SUFFIX.match(layer_name)
    return bool(m) and m.group(1) in nodes


def check_gpu_precision(precision: str, compute_capability: str, gpu: str) -> None:
    """Refuse, before a build, a precision this GPU has no tensor cores for (fp8 on Orin: it would build a
    silent fp32 fallback or crash at run time). `compute_capability`: "major.minor" as the device reports it."""
    need = MIN_COMPUTE_CAPABILITY.get(precision)
    if need is None:
        return
    try:
        have = tuple(int(x) for x in str(compute_capability).split(".")[:2])
    except ValueError:
        raise PrecisionUnsupportedError(f"GPU {gpu}: unreadable compute capability {compute_capability!r}") from None
    if have < need:
        raise PrecisionUnsupportedError(
            f"{precision} needs a GPU with compute capability >= {need[0]}.{need[1]} ({_ARCH[precision]}); "
            f"{gpu} has {compute_capability}. Export this policy at a precision it supports "
            f"({', '.join(supported_on(compute_capability))})")


_ARCH = {"bf16": "Ampere or newer", "int8": "int8 tensor cores: Xavier, Turing or newer",
         "fp8": "fp8 tensor cores: Ada, Hopper, Thor; Orin has none"}


def supported_on(compute_capability: str) -> list[str]:
    """The precisions a GPU of this compute capability builds."""
    have = tuple(int(x) for x in str(compute_capability).split(".")[:2])
    return [p for p in WEAK_FLAGS if have >= MIN_COMPUTE_CAPABILITY.get(p, (0, 0))]


def engine_cache_key(onnx_sha256: str, plan: dict, trt_version: str, cuda_version: str, gpu_name: str,
                     compute_capability: str) -> str:
    """Everything an engine depends on; any change means a rebuild, never a stale engine."""
    parts = [onnx_sha256, plan_hash(plan), trt_version, cuda_version, gpu_name, compute_capability]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
