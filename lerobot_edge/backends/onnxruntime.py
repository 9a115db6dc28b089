"""ONNX Runtime backend: CPU, CUDA and TensorRT execution providers (onnxruntime or onnxruntime-gpu).

Options: `threads`, `device` ('cpu' | 'cuda' | 'cuda:N'), `providers` (ORT provider list, e.g.
["TensorrtExecutionProvider", "CUDAExecutionProvider"] on a Jetson), `provider_options`, `optimization`
('all' | 'extended' | 'basic' | 'disable'), `spinning` (bool; off by default so idle threads do not steal
cores from the control loop or another backend).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..bundle import Bundle, GraphSpec
from ..errors import BackendUnavailableError
from .base import Backend, check_feed, check_io

_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
           "all": "ORT_ENABLE_ALL"}


class OnnxRuntimeSession:
    """One InferenceSession; outputs in `keep` stay OrtValues (on the device for GPU providers)."""

    def __init__(self, ort, graph: GraphSpec, path: str, options: Mapping[str, Any], precision: str = "fp32"):
        self.graph = graph
        self._ort = ort
        so = ort.SessionOptions()
        level = options.get("optimization", "all")
        if level not in _LEVELS:
            raise ValueError(f"backend_options optimization={level!r}: expected one of {sorted(_LEVELS)}")
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[level])
        if options.get("threads"):
            so.intra_op_num_threads = int(options["threads"])
            so.inter_op_num_threads = 1
        spinning = "1" if options.get("spinning", False) else "0"
        so.add_session_config_entry("session.intra_op.allow_spinning", spinning)
        so.add_session_config_entry("session.inter_op.allow_spinning", spinning)
        providers, provider_options = _providers(ort, options, path, precision)
        try:
            self.session = ort.InferenceSession(path, sess_options=so, providers=providers,
                                                provider_options=provider_options)
        except Exception as e:
            raise BackendUnavailableError(f"onnxruntime could not load {graph.file} with providers {providers}: "
                                          f"{e}") from e
        check_io(graph, [(i.name, tuple(i.shape), _dtype(i.type)) for i in self.session.get_inputs()],
                 [(o.name, tuple(o.shape), _dtype(o.type)) for o in self.session.get_outputs()])
        self.providers = self.session.get_providers()
        self._device = "cuda" if self.providers[0] in ("CUDAExecutionProvider", "TensorrtExecutionProvider") else "cpu"
        self._outputs = [o.name for o in graph.outputs]

    def run(self, inputs: Mapping[str, Any], *, keep: tuple[str, ...] = ()) -> dict[str, Any]:
        check_feed(self.graph, inputs)
        if not keep and all(isinstance(v, np.ndarray) for v in inputs.values()):
            return dict(zip(self._outputs, self.session.run(self._outputs, dict(inputs))))
        binding = self.session.io_binding()
        for name, value in inputs.items():
            if isinstance(value, np.ndarray):
                binding.bind_cpu_input(name, np.ascontiguousarray(value))
            else:
                binding.bind_ortvalue_input(name, value)
        for name in self._outputs:
            binding.bind_output(name, self._device if name in keep else "cpu")
        self.session.run_with_iobinding(binding)
        values = binding.get_outputs()
        return {n: (v if n in keep else v.numpy()) for n, v in zip(self._outputs, values)}


def _dtype(ort_type: str) -> str | None:
    """ORT's 'tensor(float)' -> 'float32' (numpy's names, as the manifest writes them); None if not a tensor."""
    if not ort_type.startswith("tensor(") or not ort_type.endswith(")"):
        return None
    name = ort_type[len("tensor("):-1]
    return {"float": "float32", "double": "float64", "bool": "bool"}.get(name, name)


def _providers(ort, options: Mapping[str, Any], path: str, precision: str) -> tuple[list[str], list[dict] | None]:
    available = ort.get_available_providers()
    if "providers" in options:
        providers = list(options["providers"])
    else:
        device = str(options.get("device", "cpu"))
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.startswith("cuda") \
            else ["CPUExecutionProvider"]
    missing = [p for p in providers if p not in available]
    if missing:
        raise BackendUnavailableError(f"onnxruntime providers {missing} are not available here (available: "
                                      f"{available}); on a Jetson install onnxruntime-gpu from the Jetson AI Lab "
                                      "index instead of onnxruntime")
    popts = options.get("provider_options")
    if popts is None:
        idx = int(str(options["device"]).split(":")[1]) if str(options.get("device", "")).startswith("cuda:") else 0
        popts = [_default_provider_options(p, idx, path, precision) for p in providers]
    return providers, popts


def _default_provider_options(provider: str, device_id: int, path: str, precision: str) -> dict:
    """TensorRT EP: engines cached per user (never in the bundle), keyed by the ONNX file's digest."""
    if provider == "CUDAExecutionProvider":
        return {"device_id": device_id}
    if provider == "TensorrtExecutionProvider":
        from ..bundle import sha256_file
        from ..paths import cache_root

        cache = cache_root() / "ort-trt" / sha256_file(Path(path))[:24]
        return {"device_id": device_id, "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
                "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache),
                "trt_fp16_enable": precision == "fp16", "trt_bf16_enable": precision == "bf16"}
    return {}


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    module = "onnxruntime"
    install_hint = "pip install 'lerobot-edge[onnxruntime]' (or onnxruntime-gpu on a GPU / Jetson)"
    options = {"providers": "ORT execution providers, in priority order",
               "provider_options": "one dict per provider",
               "optimization": "graph optimization level: all | extended | basic | disable",
               "spinning": "let idle intra-op threads spin (default off)"}

    def load(self, graph: GraphSpec, bundle: Bundle, options: Mapping[str, Any]) -> OnnxRuntimeSession:
        ort = self.import_library()
        return OnnxRuntimeSession(ort, graph, str(bundle.file(graph.file)), options,
                                  bundle.manifest.get("precision", "fp32"))
