"""The registries, one per kind of fact, torch-free and import-free (classes are named "module:attr" and
imported only when asked for):

- POLICIES: per LeRobot policy type, its export plan, its robot-side runtime class(es), the export options
  it takes, and the synthetic checkpoints the tests and benchmarks write for it. `policies.build_plan`,
  `runtime.load_policy`, tests/tiny_zoo.py and benchmarks/configs.py all read this table.
- TARGETS and BACKENDS: what each export target writes and validates with, which precisions it takes, which
  backend runs it by default, and which bundle file sets each backend reads.

What a *loaded* policy can do (RTC, noise kind, history, language) is asked of the policy object itself
(`EdgePolicy.supports_rtc`, `.noise_kind`, `.has_history`, `.takes_task`), never derived from its name.
Adding a policy is its own folders (policies/<name>/, runtime/policies/<name>.py, testing/checkpoints/) plus
one PolicySpec here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import BundleError, CheckpointError

_RT = "lerobot_edge.runtime.policies."
_CK = "lerobot_edge.testing.checkpoints."
_PIG = "preprocess_in_graph"   # every policy with cameras takes it (policies/common/preprocess.py)


@dataclass(frozen=True)
class PolicySpec:
    type: str                                   # LeRobot's policy type (config.json "type")
    plan: str                                   # module whose build_plan(checkpoint, **options) -> ExportPlan
    runtimes: Mapping[str, str]                 # manifest runtime kind -> "module:EdgePolicy subclass"
    export_options: tuple[str, ...] = ()        # export() keywords the plan takes (others are refused)
    tiny: str | None = None                     # "module:fn(dir) -> checkpoint": the tests' tiny checkpoint
    bench: Mapping[str, str] = field(default_factory=dict)  # bench config name -> "module:fn(dir) -> checkpoint"


POLICIES: dict[str, PolicySpec] = {s.type: s for s in (
    PolicySpec("act", "lerobot_edge.policies.act.plan", {"act": _RT + "act:ACTEdgePolicy"},
               export_options=(_PIG,), tiny=_CK + "act:tiny", bench={"act_aloha": _CK + "act:aloha"}),
    PolicySpec("diffusion", "lerobot_edge.policies.diffusion.plan",
               {"diffusion": _RT + "diffusion:DiffusionEdgePolicy",
                "diffusion_fused": _RT + "diffusion_fused:FusedDiffusionEdgePolicy"},
               export_options=("fuse_loop", _PIG), tiny=_CK + "diffusion:tiny",
               bench={"diffusion_pusht_ddim10": _CK + "diffusion:pusht_ddim10",
                      "diffusion_pusht_ddpm100": _CK + "diffusion:pusht_ddpm100"}),
    PolicySpec("pi0", "lerobot_edge.policies.pi0.plan", {"flow": _RT + "flow:FlowMatchingEdgePolicy"},
               export_options=("rtc_exact", _PIG), tiny=_CK + "pi:tiny_pi0", bench={"pi0_reduced": _CK + "pi:reduced_pi0"}),
    PolicySpec("pi05", "lerobot_edge.policies.pi05.plan", {"flow": _RT + "flow:FlowMatchingEdgePolicy"},
               export_options=("rtc_exact", _PIG), tiny=_CK + "pi:tiny_pi05",
               bench={"pi05_reduced": _CK + "pi:reduced_pi05"}),
    PolicySpec("sac", "lerobot_edge.policies.sac.plan", {"sac": _RT + "sac:SACEdgePolicy"},
               export_options=(_PIG,), tiny=_CK + "sac:tiny", bench={"sac_default": _CK + "sac:default"}),
    # SAC's actor as LeRobot 0.6 names it; same plan and runtime, so the tiny `sac` bundle covers it
    PolicySpec("gaussian_actor", "lerobot_edge.policies.sac.plan", {"sac": _RT + "sac:SACEdgePolicy"},
               export_options=(_PIG,)),
    PolicySpec("tdmpc", "lerobot_edge.policies.tdmpc.plan", {"tdmpc": _RT + "tdmpc:TDMPCEdgePolicy"},
               export_options=(_PIG,), tiny=_CK + "tdmpc:tiny", bench={"tdmpc_xarm": _CK + "tdmpc:xarm"}),
    PolicySpec("vqbet", "lerobot_edge.policies.vqbet.plan", {"vqbet": _RT + "vqbet:VQBeTEdgePolicy"},
               export_options=(_PIG,), tiny=_CK + "vqbet:tiny", bench={"vqbet_pusht": _CK + "vqbet:pusht"}),
    PolicySpec("smolvla", "lerobot_edge.policies.smolvla.plan", {"flow": _RT + "flow:FlowMatchingEdgePolicy"},
               export_options=("vlm", "rtc_exact", _PIG), tiny=_CK + "smolvla:tiny",
               bench={"smolvla_reduced": _CK + "smolvla:reduced"}),
    # GR00T N1.5: `vlm` names the Eagle processor directory (LeRobot reads HF_LEROBOT_HOME/<tokenizer_assets_repo>)
    PolicySpec("groot", "lerobot_edge.policies.groot.plan", {"groot": _RT + "groot:GrootEdgePolicy"},
               export_options=("vlm",), tiny=_CK + "groot:tiny"),
)}


@dataclass(frozen=True)
class TargetSpec:
    name: str
    backend: str                      # runs the bundle when load_policy(backend=None)
    precisions: tuple[str, ...]
    convert: str | None = None        # "module:fn(graph spec, writer, precision, options) -> graph spec"
    validate_with: str | None = None  # when `backend` cannot run at export (TensorRT needs the device's GPU)
    graph_precisions: tuple[str, ...] = ()   # precisions its ONNX carries (validated as shipped on validate_with)
    refused: Mapping[str, str] = field(default_factory=dict)   # precision -> why it is refused at export
    # precisions whose graphs the export gate may send back towards fp32 one by one (exporters/precision_fallback)
    fallback: tuple[str, ...] = ("int8",)


@dataclass(frozen=True)
class BackendSpec:
    name: str
    backend: str                      # "module:Backend subclass"
    file_sets: tuple[str, ...]        # bundle file sets it reads besides "common"


_FP8 = ("fp8 needs a FLOAT8E4M3 Q/DQ graph from NVIDIA Model Optimizer, whose ONNX tooling pins onnxruntime-gpu "
        "and cupy and does not install beside this export environment; use int8 (Q/DQ) or fp16")
TARGETS: dict[str, TargetSpec] = {t.name: t for t in (
    # fp16: a typed graph with fp32 islands (ONNX Runtime CUDA; runs on the CPU for the gate); int8: Q/DQ
    TargetSpec("onnx", "onnxruntime", ("fp32", "fp16", "int8"), "lerobot_edge.exporters.onnx_precision:convert_onnx",
               fallback=("int8", "fp16"), refused={"fp8": _FP8, "bf16": "bf16 ONNX graphs do not run on ONNX Runtime's CPU or CUDA providers; "
                                            "use --target openvino --precision bf16 (CPU) or --target trt"}),
    TargetSpec("openvino", "openvino", ("fp32", "bf16", "fp16", "int8"),
               "lerobot_edge.exporters.openvino:convert_openvino", fallback=("int8", "bf16", "fp16")),
    TargetSpec("trt", "tensorrt", ("fp32", "fp16", "bf16", "int8"),
               "lerobot_edge.exporters.tensorrt:write_build_plan", validate_with="onnxruntime",
               graph_precisions=("fp16", "int8"), fallback=("int8", "fp16"), refused={"fp8": _FP8}),
)}
BACKENDS: dict[str, BackendSpec] = {b.name: b for b in (
    BackendSpec("onnxruntime", "lerobot_edge.backends.onnxruntime:OnnxRuntimeBackend", ("onnx",)),
    BackendSpec("openvino", "lerobot_edge.backends.openvino:OpenVINOBackend", ("openvino", "onnx")),
    BackendSpec("tensorrt", "lerobot_edge.backends.tensorrt:TensorRTBackend", ("onnx", "trt")),
)}
PRECISIONS = ("fp32", "fp16", "bf16", "int8", "fp8")


def load(ref: str) -> Any:
    """Import "module:attr" and return the attribute."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def policy_spec(policy_type: str) -> PolicySpec:
    if policy_type not in POLICIES:
        raise CheckpointError(f"policy type {policy_type!r} is not supported; supported: {', '.join(sorted(POLICIES))}")
    return POLICIES[policy_type]


def runtime_class(kind: str) -> type:
    """The EdgePolicy subclass of a manifest runtime kind (a BundleError for a kind no policy registers)."""
    refs = {k: ref for spec in POLICIES.values() for k, ref in spec.runtimes.items()}
    if kind not in refs:
        raise BundleError(f"bundle runtime kind {kind!r} is unknown to this lerobot-edge (known: {sorted(refs)})")
    return load(refs[kind])


def target_spec(name: str) -> TargetSpec:
    if name not in TARGETS:
        raise ValueError(f"--target {name!r}: expected one of {sorted(TARGETS)}")
    return TARGETS[name]


def default_backend(target: str) -> str:
    """The backend that runs a bundle of `target` when none is named (an unknown target: ONNX Runtime, which
    runs every bundle's ONNX)."""
    spec = TARGETS.get(target)
    return spec.backend if spec is not None else "onnxruntime"


def backend_file_sets(backend: str) -> tuple[str, ...]:
    """The bundle file sets `backend` reads ("common" first); an unknown backend reads only "common"."""
    spec = BACKENDS.get(backend)
    return ("common", *(spec.file_sets if spec is not None else ()))
