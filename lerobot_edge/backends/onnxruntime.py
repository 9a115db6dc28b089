"""ONNX Runtime backend: CPU, CUDA and TensorRT execution providers (onnxruntime or onnxruntime-gpu).

backend_options (`OnnxRuntimeBackend.options`; an unknown key is an error):
- `threads`: intra-op CPU threads (default: one per physical core); `inter_op_threads`: > 1 runs independent
  nodes in parallel; `intra_op_affinities`: pins the intra-op threads (ORT's `session.intra_op_thread_affinities`,
  e.g. threads=3 with "1;2"); `graph_options`: {graph name: {option: value}} for one graph (base.py);
- `device`: 'cpu' (default) | 'cuda' | 'cuda:N' (CUDA provider on GPU N);
- `providers`: ORT provider list in priority order, e.g. ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
  on a Jetson (overrides `device`); `provider_options`: one dict per provider (default: device id, and for the
  TensorRT provider an engine cache per user);
- `optimization`: 'all' | 'extended' | 'basic' | 'disable'; `spinning`: bool (off by default so idle threads do
  not steal cores from the control loop or another backend);
- `io_binding`: 'auto' (default: on for the CUDA / TensorRT providers) | true | false: device buffers allocated
  once per input shape, kept outputs (KV cache, conditioning) stay on the device (backends/ort_binding.py);
- `cuda_graph`: bool (default false): ORT CUDA graphs (CUDA provider `enable_cuda_graph`, TensorRT provider
  `trt_cuda_graph_enable`), one captured graph per input shape; needs a GPU provider and IOBinding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..bundle import Bundle, GraphSpec
from ..errors import BackendUnavailableError
from .base import Backend, check_feed, check_io, cpu_has_vnni
from .ort_binding import BoundRunner

_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
           "all": "ORT_ENABLE_ALL"}


class OnnxRuntimeSession:
    """One InferenceSession; outputs in `keep` stay OrtValues (on the device for GPU providers)."""

    def __init__(self, ort, graph: GraphSpec, path: str, options: Mapping[str, Any], precision: str = "fp32"):
        self.graph, self.precision = graph, precision
        self._ort = ort
        so = ort.SessionOptions()
        level = options.get("optimization", "all")
        if level not in _LEVELS:
            raise ValueError(f"backend_options optimization={level!r}: expected one of {sorted(_LEVELS)}")
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[level])
        self.settings = thread_settings(ort, so, options)
        cuda_graph, binding = _flag(options, "cuda_graph", False), options.get("io_binding", "auto")
        if binding not in ("auto", True, False):
            raise ValueError(f"backend_options io_binding={binding!r}: expected 'auto', true or false")
        if cuda_graph and binding is False:
            raise ValueError("backend_options cuda_graph=true needs io_binding (fixed device buffers)")
        providers, provider_options = _providers(ort, options, path, precision, cuda_graph)
        if cuda_graph and providers[0] not in GPU_PROVIDERS:
            raise ValueError(f"backend_options cuda_graph=true needs the CUDA or TensorRT provider (device='cuda' or "
                             f"providers=[...]); asked for {providers}")
        try:
            self.session = ort.InferenceSession(path, sess_options=so, providers=providers,
                                                provider_options=provider_options)
        except Exception as e:
            hint = (" (CUDA graphs need every node on the GPU provider: load without cuda_graph)" if cuda_graph
                    else "")
            raise BackendUnavailableError(f"onnxruntime could not load {graph.file} with providers {providers}: "
                                          f"{e}{hint}") from e
        check_io(graph, [(i.name, tuple(i.shape), _dtype(i.type)) for i in self.session.get_inputs()],
                 [(o.name, tuple(o.shape), _dtype(o.type)) for o in self.session.get_outputs()])
        self.providers = self.session.get_providers()
        self._device = "cuda" if self.providers[0] in GPU_PROVIDERS else "cpu"
        self._outputs = [o.name for o in graph.outputs]
        self.bound = self._binding(options, binding, cuda_graph)

    def _binding(self, options: Mapping[str, Any], mode, cuda_graph: bool) -> BoundRunner | None:
        """The IOBinding runner, or None for plain `session.run` (the CPU default: nothing to keep on a device)."""
        if cuda_graph and self._device != "cuda":   # ORT fell back to the CPU (a GPU provider failed to start)
            raise BackendUnavailableError(f"backend_options cuda_graph=true: onnxruntime runs {self.graph.file} on "
                                          f"{self.providers}, not on a GPU")
        if not (cuda_graph or mode is True or (mode == "auto" and self._device == "cuda")):
            return None
        return BoundRunner(self._ort, self.session, self.graph, self._device, _device_id(options), cuda_graph)

    def run(self, inputs: Mapping[str, Any], *, keep: tuple[str, ...] = ()) -> dict[str, Any]:
        check_feed(self.graph, inputs)
        if self.bound is not None:
            return self.bound.run(inputs, keep)
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


def thread_settings(ort, so, options: Mapping[str, Any]) -> dict[str, Any]:
    """Apply the CPU thread options to SessionOptions `so`; -> what was set (the bench records it).
    threads: intra-op threads (0/None: ORT's default, one per physical core); inter_op_threads: > 1 runs
    independent nodes in parallel (ORT_PARALLEL); intra_op_affinities: ORT's session.intra_op_thread_affinities
    (one group of logical processors per intra-op thread except the caller's, e.g. "1;2" or "1,2;3,4"),
    needs `threads`; spinning: idle threads busy-wait (off by default)."""
    threads = _count(options, "threads")
    inter = _count(options, "inter_op_threads")
    if threads:
        so.intra_op_num_threads = threads
    so.inter_op_num_threads = inter or 1
    if inter and inter > 1:
        so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    affinities = options.get("intra_op_affinities")
    if affinities is not None:
        groups = str(affinities).split(";")
        if not threads or len(groups) != threads - 1 or not all(g.replace(",", "").replace("-", "").isdigit()
                                                               for g in groups):
            raise ValueError(f"backend_options intra_op_affinities={affinities!r}: expected threads - 1 groups of "
                             "logical processor ids separated by ';' (e.g. threads=3, '1;2'), with `threads` set")
        so.add_session_config_entry("session.intra_op_thread_affinities", str(affinities))
    spinning = "1" if _flag(options, "spinning", False) else "0"
    so.add_session_config_entry("session.intra_op.allow_spinning", spinning)
    so.add_session_config_entry("session.inter_op.allow_spinning", spinning)
    return {"intra_op_num_threads": threads or "default (physical cores)", "inter_op_num_threads": inter or 1,
            "execution_mode": "parallel" if inter and inter > 1 else "sequential",
            "intra_op_affinities": affinities, "allow_spinning": spinning == "1"}


def _count(options: Mapping[str, Any], key: str) -> int | None:
    value = options.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"backend_options {key}={value!r}: expected a thread count (an integer >= 0)")
    return value or None


def _dtype(ort_type: str) -> str | None:
    """ORT's 'tensor(float)' -> 'float32' (numpy's names, as the manifest writes them); None if not a tensor."""
    if not ort_type.startswith("tensor(") or not ort_type.endswith(")"):
        return None
    name = ort_type[len("tensor("):-1]
    return {"float": "float32", "double": "float64", "bool": "bool"}.get(name, name)


GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
# the provider option that turns on CUDA graph capture, per GPU provider
CUDA_GRAPH_OPTION = {"CUDAExecutionProvider": ("enable_cuda_graph", "1"),
                     "TensorrtExecutionProvider": ("trt_cuda_graph_enable", True)}


def _flag(options: Mapping[str, Any], key: str, default: bool) -> bool:
    value = options.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"backend_options {key}={value!r}: expected true or false")
    return value


def _device_id(options: Mapping[str, Any]) -> int:
    device = str(options.get("device", ""))
    if device.startswith("cuda:"):
        try:
            return int(device.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"backend_options device={device!r}: expected 'cpu', 'cuda' or 'cuda:N'") from None
    return 0


def _providers(ort, options: Mapping[str, Any], path: str, precision: str,
               cuda_graph: bool = False) -> tuple[list[str], list[dict] | None]:
    available = ort.get_available_providers()
    if "providers" in options:
        providers = list(options["providers"])
    else:
        device = str(options.get("device", "cpu"))
        if device != "cpu" and device != "cuda" and not device.startswith("cuda:"):
            raise ValueError(f"backend_options device={device!r}: onnxruntime takes 'cpu', 'cuda' or 'cuda:N'")
        # CUDA graphs need every node on the GPU: no CPU fallback provider to place shape ops on
        providers = (["CUDAExecutionProvider"] if cuda_graph else ["CUDAExecutionProvider", "CPUExecutionProvider"]) \
            if device.startswith("cuda") else ["CPUExecutionProvider"]
    missing = [p for p in providers if p not in available]
    if missing:
        raise BackendUnavailableError(f"onnxruntime providers {missing} are not available here (available: "
                                      f"{available}); on a Jetson install onnxruntime-gpu from the Jetson AI Lab "
                                      "index instead of onnxruntime")
    popts = options.get("provider_options")
    if popts is None:
        popts = [_default_provider_options(p, _device_id(options), path, precision) for p in providers]
    elif len(popts) != len(providers):
        raise ValueError(f"backend_options provider_options: {len(popts)} dicts for {len(providers)} providers")
    return providers, with_cuda_graph(providers, popts) if cuda_graph else popts


def with_cuda_graph(providers: list[str], provider_options: list[dict]) -> list[dict]:
    """The provider options with CUDA graph capture turned on for each GPU provider."""
    return [{**o, **dict([CUDA_GRAPH_OPTION[p]])} if p in CUDA_GRAPH_OPTION else dict(o)
            for p, o in zip(providers, provider_options)]


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
               "spinning": "let idle intra-op threads spin (default off)",
               "inter_op_threads": "threads running independent nodes in parallel (> 1: ORT_PARALLEL; default 1)",
               "intra_op_affinities": "pin intra-op threads: ORT's session.intra_op_thread_affinities, threads - 1 "
                                      "groups of logical processors ('1;2'); needs threads",

               "io_binding": "'auto' (on for GPU providers) | true | false: device buffers allocated once, kept "
                             "outputs stay on the device",
               "cuda_graph": "capture ORT CUDA graphs, one per input shape (GPU providers; default false)"}

    def load(self, graph: GraphSpec, bundle: Bundle, options: Mapping[str, Any]) -> OnnxRuntimeSession:
        ort = self.import_library()
        _check_int8_scheme(graph.name, bundle.quantization(graph.name), options)
        # the TensorRT EP reduces an fp32 graph only when told: not one the export gate kept in fp32
        return OnnxRuntimeSession(ort, graph, str(bundle.file(graph.file)), options,
                                  bundle.graph_precision(graph.name))


def _check_int8_scheme(graph: str, quant: Mapping[str, Any], options: Mapping[str, Any]) -> None:
    """An int8 graph runs where its check held: uint8 activations (`--target onnx`, for ONNX Runtime CPU) are not
    TensorRT's symmetric int8, and one checked on a VNNI CPU saturates on x86 CPUs without VNNI."""
    if quant.get("mode") != "qdq":
        return
    providers = list(options.get("providers") or [])
    if quant.get("activations") == "uint8" and "TensorrtExecutionProvider" in providers:
        raise BackendUnavailableError(
            f"graph {graph!r} is int8 with uint8 activations (a --target onnx bundle, for ONNX Runtime's CPU "
            "kernels); TensorRT takes symmetric int8 only: export with --target trt --precision int8 for the "
            "TensorRT provider")
    on_cpu = providers[:1] == ["CPUExecutionProvider"] or (not providers and str(options.get("device", "cpu")) == "cpu")
    if quant.get("requires") == "vnni" and on_cpu and not cpu_has_vnni(onednn=False):
        raise BackendUnavailableError(
            f"graph {graph!r} is int8 (uint8 x int8) checked on a CPU with VNNI; this CPU has none (no "
            "avx512_vnni/avx_vnni/amx_int8), where its u8 x s8 products saturate. Re-export int8 on such a CPU "
            "(the quantizer then uses 7-bit weights) or run the fp32 bundle")
