"""TensorRT IO by each tensor's real dtype, and CUDA-graph capture of a step: TensorRT-free logic (the engine's
dtypes come in as names, CUDA as a `cudart` module), so it is tested here without a GPU.

An engine's IO dtypes are the ONNX graph's: float32 at the boundary of a graph typed fp16 inside (the default),
float16 when a strongly typed graph was exported with fp16 IO, int64 token ids, bool attention masks, uint8
camera frames (preprocess_in_graph). Buffers are sized by the engine dtype; host arrays are cast to it on the way
in and back to the manifest's dtype on the way out, so the runtime sees the manifest's dtypes whatever the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..bundle import GraphSpec
from ..errors import BackendUnavailableError, BundleError, ObservationError

# TensorRT DataType member name -> numpy dtype name (bf16 and fp8 through ml_dtypes)
TRT_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "INT32": "int32",
              "INT64": "int64", "BOOL": "bool", "UINT8": "uint8", "FP8": "float8_e4m3fn"}
# host casts allowed from the manifest dtype to the engine's: float precision changes, nothing that drops data
_SAFE = {("float32", "float16"), ("float32", "bfloat16"), ("float16", "float32"), ("bfloat16", "float32"),
         ("int32", "int64"), ("bool", "uint8")}


def numpy_dtype(trt_dtype: Any) -> np.dtype:
    """`trt.DataType.HALF` (or its str / name) -> np.dtype('float16')."""
    name = str(getattr(trt_dtype, "name", trt_dtype)).rsplit(".", 1)[-1].upper()
    if name not in TRT_DTYPES:
        raise BundleError(f"TensorRT tensor dtype {name} has no host equivalent here")
    np_name = TRT_DTYPES[name]
    if np_name in ("bfloat16", "float8_e4m3fn"):
        try:
            import ml_dtypes
        except ImportError as e:
            raise BackendUnavailableError(f"{np_name} engine IO needs ml_dtypes: pip install ml_dtypes") from e
        return np.dtype(getattr(ml_dtypes, np_name))
    return np.dtype(np_name)


@dataclass(frozen=True)
class TensorIO:
    """One engine input or output: the dtype the engine binds, the manifest's (the runtime's), its largest shape."""

    name: str
    is_input: bool
    engine: np.dtype
    manifest: np.dtype
    max_shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.max_shape, dtype=np.int64)) * self.engine.itemsize


def tensor_table(graph: GraphSpec, engine_dtypes: Mapping[str, Any], max_shapes: Mapping[str, list[int]],
                 default_batch: int = 8) -> dict[str, TensorIO]:
    """Every IO of `graph` with the engine's dtype (`engine_dtypes`: name -> trt.DataType or its name) and its
    largest shape (the profile's max for inputs; dynamic axes of outputs at `default_batch`). An engine whose IO
    names differ from the manifest's, or whose dtype cannot be fed from the manifest's, is a BundleError."""
    table = {}
    for io, is_input in [*((i, True) for i in graph.inputs), *((o, False) for o in graph.outputs)]:
        if io.name not in engine_dtypes:
            raise BundleError(f"graph {graph.name!r}: the engine has no tensor {io.name!r} "
                              f"(engine tensors: {sorted(engine_dtypes)})")
        eng, man = numpy_dtype(engine_dtypes[io.name]), np.dtype(io.dtype)
        if eng != man and (man.name, eng.name) not in _SAFE and (eng.name, man.name) not in _SAFE:
            raise BundleError(f"graph {graph.name!r} tensor {io.name!r}: the engine binds {eng.name}, the manifest "
                              f"says {man.name}")
        shape = max_shapes[io.name]["max"] if io.name in max_shapes else [
            default_batch if isinstance(d, str) else d for d in io.shape]
        table[io.name] = TensorIO(io.name, is_input, eng, man, tuple(int(d) for d in shape))
    return table


def host_input(value: np.ndarray, io: TensorIO) -> np.ndarray:
    """A contiguous host array in the engine's dtype, checked to fit the buffer (a larger batch than the plan's
    max would write past it)."""
    arr = np.asarray(value)
    if arr.ndim != len(io.max_shape) or any(d > m for d, m in zip(arr.shape, io.max_shape)):
        raise ObservationError(f"input {io.name!r}: shape {arr.shape} exceeds the engine's largest {io.max_shape} "
                               "(the batch is capped by the build plan's max_batch)")
    return np.ascontiguousarray(arr, dtype=io.engine)


def host_output(engine_array: np.ndarray, io: TensorIO) -> np.ndarray:
    """An output copied from the device, in the manifest's dtype (fp16 engine IO comes back as float32)."""
    return engine_array if io.engine == io.manifest else engine_array.astype(io.manifest)


def check_device_input(dtype: np.dtype, shape: tuple, io: TensorIO) -> None:
    """A kept device buffer fed to another engine must already be in that engine's dtype (no cast on device)."""
    if np.dtype(dtype) != io.engine:
        raise BundleError(f"input {io.name!r}: a device buffer of {np.dtype(dtype).name} cannot feed an engine "
                          f"input of {io.engine.name}; export both graphs at the same precision")
    if len(shape) != len(io.max_shape) or any(d > m for d, m in zip(shape, io.max_shape)):
        raise ObservationError(f"input {io.name!r}: device buffer of shape {shape} exceeds {io.max_shape}")


class CudaGraphStep:
    """CUDA-graph capture of one engine step (`context.execute_async_v3` on `stream`), one graph per input shape
    signature: the first run at a shape runs plainly (TensorRT sizes its scratch memory then), the second
    captures and launches, later ones launch the captured graph. Valid because every tensor address stays fixed:
    the session binds its own buffers (device inputs are copied into them) and shapes are part of the key."""

    def __init__(self, cudart, context, stream):
        self.cudart, self.context, self.stream = cudart, context, stream
        self.seen: set[tuple] = set()
        self.graphs: dict[tuple, Any] = {}   # shape key -> (cudaGraph, cudaGraphExec)

    def run(self, key: tuple) -> str:
        """Execute once for input shapes `key`; -> "plain" | "captured" | "replayed"."""
        cudart = self.cudart
        if key in self.graphs:
            _ok(cudart.cudaGraphLaunch(self.graphs[key][1], self.stream))
            return "replayed"
        if key not in self.seen:
            self.seen.add(key)
            if not self.context.execute_async_v3(self.stream):
                raise BackendUnavailableError("TensorRT execution failed")
            return "plain"
        mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        _ok(cudart.cudaStreamBeginCapture(self.stream, mode))
        ok = self.context.execute_async_v3(self.stream)
        graph = _ok(cudart.cudaStreamEndCapture(self.stream))
        if not ok:
            raise BackendUnavailableError("TensorRT execution failed while capturing a CUDA graph")
        exec_ = _ok(cudart.cudaGraphInstantiate(graph, 0))
        self.graphs[key] = (graph, exec_)
        _ok(cudart.cudaGraphLaunch(exec_, self.stream))
        return "captured"

    def close(self) -> None:
        for graph, exec_ in self.graphs.values():
            self.cudart.cudaGraphExecDestroy(exec_)
            self.cudart.cudaGraphDestroy(graph)
        self.graphs.clear()


def _ok(result):
    """cuda-python returns (err, value...) tuples; a nonzero err is a BackendUnavailableError."""
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise BackendUnavailableError(f"CUDA error {err}")
    return rest[0] if len(rest) == 1 else (rest or None)
