"""TensorRT backend (TensorRT 10 Python API + cuda-python; no torch). Untested on hardware here: this machine
has no GPU. The plan, cache-key and fp32-island logic it relies on is tested (backends/tensorrt_plan.py).

Options: `device` ('cuda' | 'cuda:N'), `cache_dir` (engine cache; default the per-user cache), `rebuild` (bool),
`engine_dir` (engines prebuilt by `lerobot-edge build BUNDLE --output DIR`, e.g. copied across a fleet),
`engine_mismatch` ('rebuild' (default: into the cache) | 'refuse' when an engine_dir engine does not fit this
device); `max_batch` is fixed by the bundle's plan. Engines are keyed by ONNX sha256, plan hash, TensorRT and
CUDA versions, GPU name and compute capability (backends/tensorrt_engines.py): any change rebuilds (minutes) or
refuses, a stale engine never loads.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..bundle import Bundle, GraphSpec
from ..errors import BackendUnavailableError, BundleError
from ..progress import Progress
from .base import Backend, check_feed
from .tensorrt_engines import (DeviceFacts, check_engine_options, engine_file_name, engine_key, find_engine,
                               graph_plan)
from .tensorrt_plan import check_gpu_precision, keep_fp32

log = logging.getLogger(__name__)


def _cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError as e:
            raise BackendUnavailableError("the tensorrt backend needs cuda-python: pip install 'lerobot-edge[tensorrt]' "
                                          "(cuda-python 12.x)") from e
    return cudart


def _check(result):
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise BackendUnavailableError(f"CUDA error {err}")
    return rest[0] if len(rest) == 1 else rest


class DeviceBuffer:
    """A device allocation that outputs in `keep` come back as (and inputs may be given as)."""

    def __init__(self, cudart, nbytes: int):
        self.cudart, self.nbytes = cudart, nbytes
        self.ptr = _check(cudart.cudaMalloc(max(nbytes, 1)))
        self.shape: tuple = ()
        self.dtype = np.float32

    def __del__(self):
        try:
            self.cudart.cudaFree(self.ptr)
        except Exception:
            pass


def progress_monitor(trt, progress: Progress):
    """The builder's phases (an IProgressMonitor: TensorRT >= 10; None before) as progress tasks, nested phases
    indented. TensorRT calls it from its own threads, from C++ that cannot take a Python exception: none escape."""
    if not hasattr(trt, "IProgressMonitor"):
        return None

    class Monitor(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self.lock, self.phases = threading.Lock(), {}   # name -> (depth, ExitStack, advance)

        def phase_start(self, phase_name, parent_phase, num_steps):
            try:
                with self.lock:
                    depth = self.phases[parent_phase][0] + 1 if parent_phase in self.phases else 0
                    stack = ExitStack()
                    advance = stack.enter_context(progress.task("  " * depth + phase_name, num_steps))
                    self.phases[phase_name] = (depth, stack, advance)
            except Exception:
                log.debug("progress monitor", exc_info=True)

        def step_complete(self, phase_name, step):
            try:
                with self.lock:
                    if phase_name in self.phases:
                        self.phases[phase_name][2]()
            except Exception:
                log.debug("progress monitor", exc_info=True)
            return True  # False would cancel the build

        def phase_finish(self, phase_name):
            try:
                with self.lock:
                    entry = self.phases.pop(phase_name, None)
                    if entry:
                        entry[1].close()
            except Exception:
                log.debug("progress monitor", exc_info=True)

    return Monitor()


def device_index(device: str | None) -> int:
    """'cuda' / None -> 0, 'cuda:N' -> N."""
    d = str(device or "cuda")
    if d == "cuda":
        return 0
    if d.startswith("cuda:") and d[5:].isdigit():
        return int(d[5:])
    raise ValueError(f"backend_options device={device!r}: the tensorrt backend takes 'cuda' or 'cuda:N'")


def device_facts(trt, cudart, device: str | None) -> DeviceFacts:
    """TensorRT and CUDA runtime versions, GPU name and compute capability: what an engine is tied to."""
    props = _check(cudart.cudaGetDeviceProperties(device_index(device)))
    return DeviceFacts(trt.__version__, str(_check(cudart.cudaRuntimeGetVersion())),
                       props.name.decode(errors="replace"), f"{props.major}.{props.minor}")


def build_engine(trt, onnx_path: Path, plan: dict, monitor=None) -> bytes:
    """Serialized engine from the ONNX and its build plan (TensorRT 10 builder API); `monitor` (see
    progress_monitor) must outlive the build, so the caller holds it."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    typed = strongly_typed(trt, plan)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise BundleError(f"TensorRT cannot parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    if monitor is not None:
        config.progress_monitor = monitor
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(plan["workspace_bytes"]))
    config.builder_optimization_level = int(plan["builder_optimization_level"])
    if not typed:   # weak typing: precision flags, and the islands (norms, softmax, output projection) pinned
        for flag in plan["builder_flags"]:
            config.set_flag(getattr(trt.BuilderFlag, flag))
        pin_fp32_islands(trt, network, plan["fp32_islands"])
    for shapes in plan["profiles"]:
        profile = builder.create_optimization_profile()
        for name, s in shapes.items():
            profile.set_shape(name, s["min"], s["opt"], s["max"])
        config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise BackendUnavailableError(f"TensorRT failed to build an engine for {onnx_path.name}")
    return bytes(engine)


def strongly_typed(trt, plan: dict) -> bool:
    """Build strongly typed (types from the ONNX; precision flags are not allowed then) when the plan's graph
    carries its precision and this TensorRT has strongly typed networks (>= 9); else the weakly typed path."""
    if plan["strongly_typed"] and not hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        log.warning("TensorRT %s has no strongly typed networks: building %r weakly typed with %s",
                    trt.__version__, plan["graph"], plan["builder_flags"])
        return False
    return bool(plan["strongly_typed"])


def pin_fp32_islands(trt, network, islands: dict) -> int:
    """Set precision and output types of the island layers to fp32 (honoured with OBEY_PRECISION_CONSTRAINTS);
    -> how many layers were pinned. A strongly typed network takes its types from the ONNX instead."""
    pinned = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        outputs = [layer.get_output(j).name for j in range(layer.num_outputs)]
        if keep_fp32(layer.name, outputs, islands):
            layer.precision = trt.float32
            for j in range(layer.num_outputs):
                if layer.get_output(j).dtype in (trt.float32, trt.float16, trt.bfloat16):
                    layer.set_output_type(j, trt.float32)
            pinned += 1
    if islands.get("nodes") and not pinned:
        log.warning("none of the %d fp32 island nodes matched a TensorRT layer name", len(islands["nodes"]))
    return pinned


class TensorRTSession:
    """One execution context, buffers allocated once at the profile's max shapes, one stream."""

    def __init__(self, trt, cudart, graph: GraphSpec, engine_bytes: bytes, plan: dict):
        self.graph, self.trt, self.cudart = graph, trt, cudart
        self.engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(engine_bytes)
        self.context = self.engine.create_execution_context()
        self.stream = _check(cudart.cudaStreamCreate())
        maxes = plan["profiles"][0]
        self.buffers: dict[str, DeviceBuffer] = {}
        # the manifest's dtypes: uint8 camera frames (preprocess_in_graph), float32 elsewhere
        self.dtypes = {io.name: np.dtype(io.dtype) for io in (*graph.inputs, *graph.outputs)}
        for io in (*graph.inputs, *graph.outputs):
            shape = maxes[io.name]["max"] if io.name in maxes else [8 if isinstance(d, str) else d for d in io.shape]
            self.buffers[io.name] = DeviceBuffer(cudart, int(np.prod(shape)) * self.dtypes[io.name].itemsize)

    def run(self, inputs: Mapping[str, Any], *, keep: tuple[str, ...] = ()) -> dict[str, Any]:
        check_feed(self.graph, inputs)
        cudart, H2D, D2H = self.cudart, 1, 2  # cudaMemcpyHostToDevice / DeviceToHost
        for name, value in inputs.items():
            if isinstance(value, DeviceBuffer):
                self.context.set_input_shape(name, value.shape)
                self.context.set_tensor_address(name, value.ptr)
                continue
            host = np.ascontiguousarray(value, dtype=self.dtypes[name])
            buf = self.buffers[name]
            _check(cudart.cudaMemcpyAsync(buf.ptr, host.ctypes.data, host.nbytes, H2D, self.stream))
            self.context.set_input_shape(name, host.shape)
            self.context.set_tensor_address(name, buf.ptr)
        for o in self.graph.outputs:
            self.context.set_tensor_address(o.name, self.buffers[o.name].ptr)
        if not self.context.execute_async_v3(self.stream):
            raise BackendUnavailableError(f"TensorRT execution of {self.graph.name!r} failed")
        out = {}
        for o in self.graph.outputs:
            shape = tuple(self.context.get_tensor_shape(o.name))
            buf = self.buffers[o.name]
            if o.name in keep:
                buf.shape = shape
                out[o.name] = buf
                continue
            host = np.empty(shape, self.dtypes[o.name])
            _check(cudart.cudaMemcpyAsync(host.ctypes.data, buf.ptr, host.nbytes, D2H, self.stream))
            out[o.name] = host
        _check(cudart.cudaStreamSynchronize(self.stream))
        return out


class TensorRTBackend(Backend):
    name = "tensorrt"
    module = "tensorrt"
    install_hint = ("On a Jetson TensorRT comes with JetPack (sudo apt install nvidia-jetpack), not pip; elsewhere: "
                    "pip install tensorrt 'cuda-python>=12.6,<13' --extra-index-url https://pypi.nvidia.com. "
                    "`lerobot-edge doctor` prints the command for this machine")
    options = {"cache_dir": "engine cache directory (default: the per-user cache)",
               "rebuild": "rebuild the engine even if a cached one matches",
               "engine_dir": "engines prebuilt by `lerobot-edge build BUNDLE --output DIR` (a fleet's copy)",
               "engine_mismatch": "when an engine_dir engine does not fit this device: 'rebuild' (into the cache; "
                                  "default) | 'refuse'"}

    @classmethod
    def gpu_runtime(cls):
        """(tensorrt, cuda runtime) once a GPU is visible; a BackendUnavailableError naming what is missing."""
        trt = cls.import_library()
        cudart = _cudart()
        if _check(cudart.cudaGetDeviceCount()) < 1:
            raise BackendUnavailableError("the tensorrt backend needs an NVIDIA GPU; none is visible")
        return trt, cudart

    def load(self, graph: GraphSpec, bundle: Bundle, options: Mapping[str, Any]) -> TensorRTSession:
        check_engine_options(options)
        device_index(options.get("device"))
        plan, onnx_path = graph_plan(bundle, graph)
        trt, cudart = self.gpu_runtime()
        facts = device_facts(trt, cudart, options.get("device"))
        check_gpu_precision(plan["precision"], facts.compute_capability, facts.gpu)
        return TensorRTSession(trt, cudart, graph, self._engine(trt, onnx_path, plan, facts, options), plan)

    def _engine(self, trt, onnx_path: Path, plan: dict, facts: DeviceFacts, options) -> bytes:
        """An engine_dir's engine when it fits, else the user cache's, else a new build cached there."""
        from ..paths import cache_root

        if options.get("engine_dir") and not options.get("rebuild"):
            found, why = find_engine(options["engine_dir"], plan["graph"], plan, facts,
                                     options.get("engine_mismatch", "rebuild"))
            if found is not None:
                return found.read_bytes()
            warnings.warn(f"{options['engine_dir']}: {why}; using the per-user engine cache instead (building the "
                          "engine there if needed)", stacklevel=4)
        cache = Path(options.get("cache_dir") or cache_root() / "engines")
        path = cache / engine_file_name(plan["graph"], engine_key(plan, facts))
        if path.is_file() and not options.get("rebuild"):
            return path.read_bytes()
        warnings.warn(f"building the TensorRT engine for {plan['graph']!r} ({plan['precision']}); this takes minutes "
                      "and is cached for this GPU and TensorRT version (`lerobot-edge build` does it ahead of time)",
                      stacklevel=4)
        monitor = progress_monitor(trt, self.progress)
        with self.progress.task(f"building the TensorRT engine for {plan['graph']!r} ({plan['precision']})"):
            engine = build_engine(trt, onnx_path, plan, monitor)
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(engine)
        os.replace(tmp, path)
        return engine
