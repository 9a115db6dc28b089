"""OpenVINO backend: CPU / GPU / NPU / AUTO, LATENCY hint, inference precision from the bundle.

Options: `threads` (INFERENCE_NUM_THREADS), `pinning` (ENABLE_CPU_PINNING), `core_type` (SCHEDULING_CORE_TYPE:
ANY_CORE | PCORE_ONLY | ECORE_ONLY), `hyper_threading` (ENABLE_HYPER_THREADING), `graph_options` (per graph, see
base.py), `device` ('CPU' default, 'GPU', 'NPU', 'AUTO'), `precision` (override of the bundle's inference
precision, 'f32' | 'bf16' | 'f16'; warns), `cache_dir` (OpenVINO's compiled-model cache). The CPU threading
settings a session ends up with (OpenVINO's defaults included) are in `session.settings`.
Without an explicit precision hint OpenVINO runs bf16 on CPUs that have it, so fp32 bundles set f32.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import numpy as np

from ..bundle import Bundle, GraphSpec
from ..errors import BackendUnavailableError, BundleError
from .base import Backend, check_feed, check_io, cpu_has_vnni

# bundle precision -> INFERENCE_PRECISION_HINT (int8 models carry their own quantized ops; float parts f32)
PRECISION_HINT = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}


class OpenVINOSession:
    """One compiled model and one reused InferRequest; outputs in `keep` come back as ov.Tensor handles."""

    def __init__(self, ov, graph: GraphSpec, path: str, options: Mapping[str, Any], precision: str):
        self.graph = graph
        self._ov = ov
        device = str(options.get("device", "CPU")).upper()
        hint = PRECISION_HINT.get(precision, "f32")
        if "precision" in options:
            warnings.warn(f"OpenVINO inference precision overridden to {options['precision']} (bundle: {precision})",
                          stacklevel=3)
            hint = str(options["precision"])
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if device in ("CPU", "GPU"):
            config["INFERENCE_PRECISION_HINT"] = hint
        if device == "CPU":
            config.update(cpu_threading(options))
        core = ov.Core()
        if options.get("cache_dir"):
            core.set_property({"CACHE_DIR": str(options["cache_dir"])})
        if device not in core.available_devices and device != "AUTO":
            raise BackendUnavailableError(f"OpenVINO device {device!r} is not available here "
                                          f"(available: {core.available_devices})")
        try:
            model = core.read_model(path)
        except Exception as e:
            raise BundleError(f"{graph.file}: OpenVINO cannot read the model ({e})") from e
        check_io(graph, [(p.get_any_name(), _dims(p), _dtype(p)) for p in model.inputs],
                 [(p.get_any_name(), _dims(p), _dtype(p)) for p in model.outputs])
        self.compiled = core.compile_model(model, device, config)
        self.request = self.compiled.create_infer_request()
        self.settings = {k: _prop(self.compiled, k) for k in (*THREAD_KEYS.values(), "NUM_STREAMS")} \
            if device == "CPU" else {}
        self.device, self.precision_hint = device, hint
        self._outputs = [o.name for o in graph.outputs]

    def run(self, inputs: Mapping[str, Any], *, keep: tuple[str, ...] = ()) -> dict[str, Any]:
        check_feed(self.graph, inputs)
        feed = {k: (self._ov.Tensor(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v)
                for k, v in inputs.items()}
        self.request.infer(feed)
        out = {}
        for name in self._outputs:
            t = self.request.get_tensor(name)
            # the request reuses its output buffers: copy what leaves, hand out a detached tensor when kept
            out[name] = self._ov.Tensor(t.data.copy()) if name in keep else t.data.copy()
        return out


# backend_options -> OpenVINO CPU property
THREAD_KEYS = {"threads": "INFERENCE_NUM_THREADS", "pinning": "ENABLE_CPU_PINNING",
               "core_type": "SCHEDULING_CORE_TYPE", "hyper_threading": "ENABLE_HYPER_THREADING"}
CORE_TYPES = ("ANY_CORE", "PCORE_ONLY", "ECORE_ONLY")


def cpu_threading(options: Mapping[str, Any]) -> dict[str, Any]:
    """The CPU plugin's threading properties from backend_options (unset ones stay OpenVINO's defaults)."""
    config: dict[str, Any] = {}
    threads = options.get("threads")
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise ValueError(f"backend_options threads={threads!r}: expected a thread count (an integer >= 0)")
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
    for key in ("pinning", "hyper_threading"):
        if key in options:
            if not isinstance(options[key], bool):
                raise ValueError(f"backend_options {key}={options[key]!r}: expected true or false")
            config[THREAD_KEYS[key]] = options[key]
    if "core_type" in options:
        core = str(options["core_type"]).upper()
        if core not in CORE_TYPES:
            raise ValueError(f"backend_options core_type={options['core_type']!r}: expected one of {CORE_TYPES}")
        config["SCHEDULING_CORE_TYPE"] = core
    return config


def _prop(compiled, key: str) -> Any:
    """A compiled model's property as JSON can hold it (enums as their names); None where unsupported."""
    try:
        value = compiled.get_property(key)
    except Exception:  # a property this OpenVINO version or device does not report
        return None
    return value if isinstance(value, (bool, int, float, str)) else str(value).split(".")[-1]


def _dims(port) -> tuple:
    return tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())


def _dtype(port) -> str | None:
    """The port's element type as numpy names it ('float32', 'int64'); None where it has none (dynamic)."""
    try:
        return str(np.dtype(port.get_element_type().to_dtype()))
    except Exception:  # an undefined/dynamic element type, or an OpenVINO without to_dtype()
        return None


class OpenVINOBackend(Backend):
    name = "openvino"
    module = "openvino"
    install_hint = "pip install 'lerobot-edge[openvino]'"
    options = {"precision": "override the bundle's inference precision: f32 | bf16 | f16 (warns)",
               "cache_dir": "OpenVINO compiled-model cache directory",
               "pinning": "ENABLE_CPU_PINNING: pin inference threads to cores (true | false)",
               "core_type": "SCHEDULING_CORE_TYPE: ANY_CORE | PCORE_ONLY | ECORE_ONLY (hybrid CPUs)",
               "hyper_threading": "ENABLE_HYPER_THREADING: also use the second logical core of each physical one"}

    def load(self, graph: GraphSpec, bundle: Bundle, options: Mapping[str, Any]) -> OpenVINOSession:
        ov = self.import_library()
        quant = bundle.quantization(graph.name)
        if quant.get("requires") == "vnni" and str(options.get("device", "CPU")).upper() == "CPU" and not cpu_has_vnni():
            raise BackendUnavailableError(
                f"graph {graph.name!r} is int8 quantized for CPUs with VNNI (manifest quantization mode "
                f"{quant.get('mode')!r}); this CPU has none (no avx512_vnni/avx_vnni/amx_int8), where its 8-bit "
                "weights overflow. Run the bundle's ONNX (backend='onnxruntime') or re-export int8 on such a CPU "
                "so the converter keeps the overflow-safe mode")
        rel = graph.artifacts.get("openvino") if bundle.has_files("openvino") else None
        path = str(bundle.file(rel or graph.file))
        # a graph the export gate kept in fp32 runs f32 in a bf16/fp16 bundle
        return OpenVINOSession(ov, graph, path, options, bundle.graph_precision(graph.name))
