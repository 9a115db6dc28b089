"""TensorRT backend (TensorRT 10 Python API + cuda-python; no torch). Untested on hardware here: this machine
has no GPU. The plan, cache-key and fp32-island logic it relies on is tested (backends/tensorrt_plan.py).

Options: `device` ('cuda:N'), `cache_dir` (engine cache; default the per-user cache), `rebuild` (bool),
`max_batch` is fixed by the bundle's plan. Engines are cached keyed by ONNX sha256, plan hash, TensorRT and
CUDA versions, GPU name and compute capability: any change rebuilds (minutes), a stale engine never loads.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..bundle import Bundle, GraphSpec, sha256_file
from ..errors import BackendUnavailableError, BundleError
from .base import Backend, check_feed
from .tensorrt_plan import PLAN_FORMAT, engine_cache_key, keep_fp32

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


def build_engine(trt, onnx_path: Path, plan: dict) -> bytes:
    """Serialized engine from the ONNX and its build plan (TensorRT 10 builder API)."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if plan["strongly_typed"] else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise BundleError(f"TensorRT cannot parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(plan["workspace_bytes"]))
    config.builder_optimization_level = int(plan["builder_optimization_level"])
    for flag in plan["builder_flags"]:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    for i in range(network.num_layers):  # fp32 islands: norms, softmax, final projection
        layer = network.get_layer(i)
        if keep_fp32(layer.name, str(layer.type), plan["fp32_layers"]):
            layer.precision = trt.float32
            for j in range(layer.num_outputs):
                layer.set_output_type(j, trt.float32)
    for shapes in plan["profiles"]:
        profile = builder.create_optimization_profile()
        for name, s in shapes.items():
            profile.set_shape(name, s["min"], s["opt"], s["max"])
        config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise BackendUnavailableError(f"TensorRT failed to build an engine for {onnx_path.name}")
    return bytes(engine)


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
               "rebuild": "rebuild the engine even if a cached one matches"}

    def load(self, graph: GraphSpec, bundle: Bundle, options: Mapping[str, Any]) -> TensorRTSession:
        trt = self.import_library()
        cudart = _cudart()
        if _check(cudart.cudaGetDeviceCount()) < 1:
            raise BackendUnavailableError("the tensorrt backend needs an NVIDIA GPU; none is visible")
        rel = graph.artifacts.get("trt")
        if not rel:
            raise BundleError(f"graph {graph.name!r} has no TensorRT build plan: export with --target trt")
        plan = json.loads(bundle.file(rel).read_text())
        if plan.get("format") != PLAN_FORMAT:
            raise BundleError(f"{rel}: not a lerobot-edge TensorRT build plan")
        onnx_path = bundle.file(graph.file)
        if sha256_file(onnx_path) != plan["onnx_sha256"]:
            raise BundleError(f"{rel}: built for another {graph.file} (sha256 differs)")
        props = _check(cudart.cudaGetDeviceProperties(int(str(options.get("device", "cuda:0")).split(":")[-1])))
        key = engine_cache_key(plan["onnx_sha256"], plan, trt.__version__, str(_check(cudart.cudaRuntimeGetVersion())),
                               props.name.decode(errors="replace"), f"{props.major}.{props.minor}")
        return TensorRTSession(trt, cudart, graph, self._engine(trt, onnx_path, plan, key, options), plan)

    def _engine(self, trt, onnx_path: Path, plan: dict, key: str, options) -> bytes:
        from ..paths import cache_root

        cache = Path(options.get("cache_dir") or cache_root() / "engines")
        path = cache / f"{plan['graph']}-{key[:24]}.engine"
        if path.is_file() and not options.get("rebuild"):
            return path.read_bytes()
        warnings.warn(f"building the TensorRT engine for {plan['graph']!r} ({plan['precision']}); this takes minutes "
                      "and is cached for this GPU and TensorRT version", stacklevel=4)
        engine = build_engine(trt, onnx_path, plan)
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(engine)
        os.replace(tmp, path)
        return engine
