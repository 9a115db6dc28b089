"""TensorRT backend (TensorRT 10 Python API + cuda-python; no torch). Untested on hardware here: this machine
has no GPU. The plan, cache-key, fp32-island, precision-per-GPU, IO-dtype and CUDA-graph logic it relies on is
tested (backends/tensorrt_plan.py, backends/tensorrt_io.py).

Options: `device` ('cuda' | 'cuda:N'), `cache_dir` (engine cache; default the per-user cache), `rebuild` (bool),
`engine_dir` (engines prebuilt by `lerobot-edge build BUNDLE --output DIR`, e.g. copied across a fleet),
`engine_mismatch` ('rebuild' (default: into the cache) | 'refuse' when an engine_dir engine does not fit this
device), `cuda_graph` (bool, default false: each input shape's step captured and replayed as a CUDA graph);
`max_batch` is fixed by the bundle's plan. A precision the GPU has no tensor cores for (fp8 below compute
capability 8.9, e.g. Orin) is a PrecisionUnsupportedError naming the GPU, before any build. Engines are keyed by
ONNX sha256, plan hash, TensorRT and CUDA versions, GPU name and compute capability (backends/tensorrt_engines.py):
any change rebuilds (minutes) or refuses, a stale engine never loads.
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
from .tensorrt_io import CudaGraphStep, check_device_input, host_input, host_output, tensor_table
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

    def __init__(self, cudart, nbytes: int, dtype=np.float32):
        self.cudart, self.nbytes = cudart, nbytes
        self.ptr = _check(cudart.cudaMalloc(max(nbytes, 1)))
        self.shape: tuple = ()
        self.dtype = np.dtype(dtype)   # the engine's dtype of the tensor it holds

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
    """One execution context, one stream, buffers allocated once at the profile's max shapes in each tensor's
    engine dtype (backends/tensorrt_io.py); optionally each input shape's step captured as a CUDA graph."""

    H2D, D2H, D2D = 1, 2, 3   # cudaMemcpyKind

    def __init__(self, trt, cudart, graph: GraphSpec, engine_bytes: bytes, plan: dict, cuda_graph: bool = False):
        self.graph, self.trt, self.cudart = graph, trt, cudart
        self.engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise BundleError(f"graph {graph.name!r}: TensorRT could not deserialize the engine (another TensorRT "
                              "version or GPU? rebuild it)")
        self.context = self.engine.create_execution_context()
        self.stream = _check(cudart.cudaStreamCreate())
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.io = tensor_table(graph, {n: self.engine.get_tensor_dtype(n) for n in names}, plan["profiles"][0])
        self.buffers = {name: DeviceBuffer(cudart, t.nbytes, t.engine) for name, t in self.io.items()}
        for o in graph.outputs:   # fixed output addresses (inputs are bound per run, see _feed)
            self.context.set_tensor_address(o.name, self.buffers[o.name].ptr)
        self.step = CudaGraphStep(cudart, self.context, self.stream) if cuda_graph else None
        self.last_step = "plain"

    def _feed(self, name: str, value) -> tuple:
        """Copy one input into its buffer (a device buffer: device to device) and set its shape."""
        io, buf, cudart = self.io[name], self.buffers[name], self.cudart
        ptr = buf.ptr
        if isinstance(value, DeviceBuffer):
            check_device_input(value.dtype, value.shape, io)
            shape = tuple(value.shape)
            if self.step is None:   # bound where it lies (a KV cache is not copied per denoise step) ...
                ptr = value.ptr
            elif value.ptr != buf.ptr:   # ... except under a CUDA graph, whose addresses are fixed at capture
                nbytes = int(np.prod(shape, dtype=np.int64)) * io.engine.itemsize
                _check(cudart.cudaMemcpyAsync(buf.ptr, value.ptr, nbytes, self.D2D, self.stream))
        else:
            host = host_input(value, io)
            shape = host.shape
            _check(cudart.cudaMemcpyAsync(buf.ptr, host.ctypes.data, host.nbytes, self.H2D, self.stream))
        self.context.set_tensor_address(name, ptr)
        self.context.set_input_shape(name, shape)
        return shape

    def run(self, inputs: Mapping[str, Any], *, keep: tuple[str, ...] = ()) -> dict[str, Any]:
        check_feed(self.graph, inputs)
        key = tuple(self._feed(name, value) for name, value in inputs.items())
        if self.step is not None:
            self.last_step = self.step.run(key)
        elif not self.context.execute_async_v3(self.stream):
            raise BackendUnavailableError(f"TensorRT execution of {self.graph.name!r} failed")
        out, copies = {}, []
        for o in self.graph.outputs:
            shape, buf, io = tuple(self.context.get_tensor_shape(o.name)), self.buffers[o.name], self.io[o.name]
            if o.name in keep:
                buf.shape = shape
                out[o.name] = buf
                continue
            host = np.empty(shape, io.engine)
            _check(self.cudart.cudaMemcpyAsync(host.ctypes.data, buf.ptr, host.nbytes, self.D2H, self.stream))
            copies.append((o.name, host))
        _check(self.cudart.cudaStreamSynchronize(self.stream))
        out.update({name: host_output(host, self.io[name]) for name, host in copies})
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
                                  "default) | 'refuse'",
               "cuda_graph": "capture each input shape's step as a CUDA graph and replay it (default false; "
                             "device inputs are then copied into the session's fixed buffers)"}

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
        cuda_graph = options.get("cuda_graph", False)
        if not isinstance(cuda_graph, bool):
            raise ValueError(f"backend_options cuda_graph={cuda_graph!r}: expected true or false")
        plan, onnx_path = graph_plan(bundle, graph)
        trt, cudart = self.gpu_runtime()
        facts = device_facts(trt, cudart, options.get("device"))
        check_gpu_precision(plan["precision"], facts.compute_capability, facts.gpu)
        return TensorRTSession(trt, cudart, graph, self._engine(trt, onnx_path, plan, facts, options), plan,
                               cuda_graph)

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
