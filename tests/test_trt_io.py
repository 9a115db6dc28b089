"""TensorRT IO by each tensor's real dtype and CUDA-graph capture (backends/tensorrt_io.py), without TensorRT or a
GPU: engine dtypes are given by name as `engine.get_tensor_dtype` reports them, and the CUDA runtime is a recording
stand-in (neither can be installed here; the device path runs in `make gpu-check`)."""

from __future__ import annotations

import numpy as np
import pytest

from lerobot_edge.backends.tensorrt_io import (CudaGraphStep, check_device_input, host_input, host_output,
                                               numpy_dtype, tensor_table)
from lerobot_edge.bundle import GraphSpec, IOSpec
from lerobot_edge.errors import BundleError, ObservationError

GRAPH = GraphSpec("prefix", "prefix.onnx",
                  (IOSpec("tokens", ("batch", 12), "int64"), IOSpec("mask", ("batch", 12), "bool"),
                   IOSpec("image", ("batch", 3, 8, 8), "uint8"), IOSpec("x", ("batch", 4), "float32")),
                  (IOSpec("kv", (2, "batch", 12, 16), "float32"),))
PROFILE = {n: {"min": [1, *s], "opt": [1, *s], "max": [4, *s]} for n, s in
           (("tokens", [12]), ("mask", [12]), ("image", [3, 8, 8]), ("x", [4]))}
FP16_IO = {"tokens": "DataType.INT64", "mask": "DataType.BOOL", "image": "DataType.UINT8", "x": "DataType.HALF",
           "kv": "DataType.HALF"}


@pytest.mark.parametrize("name, want", [("DataType.FLOAT", np.float32), ("HALF", np.float16), ("INT64", np.int64),
                                        ("DataType.BOOL", np.bool_), ("INT32", np.int32), ("UINT8", np.uint8),
                                        ("INT8", np.int8)])
def test_trt_dtype_names_map_to_numpy(name, want):
    assert numpy_dtype(name) == np.dtype(want)


def test_bf16_and_fp8_io_map_through_ml_dtypes():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    assert numpy_dtype("BF16") == np.dtype(ml_dtypes.bfloat16)
    assert numpy_dtype("FP8") == np.dtype(ml_dtypes.float8_e4m3fn)
    with pytest.raises(BundleError, match="INT4 has no host equivalent"):
        numpy_dtype("DataType.INT4")


def test_buffers_are_sized_by_the_engine_dtype():
    table = tensor_table(GRAPH, FP16_IO, PROFILE)
    assert table["tokens"].nbytes == 4 * 12 * 8 and table["mask"].nbytes == 4 * 12
    assert table["x"].nbytes == 4 * 4 * 2 and table["image"].nbytes == 4 * 3 * 8 * 8
    assert table["kv"].max_shape == (2, 8, 12, 16) and table["kv"].nbytes == 2 * 8 * 12 * 16 * 2   # output: batch 8
    assert table["x"].engine == np.float16 and table["x"].manifest == np.float32


def test_host_arrays_are_cast_to_the_engine_dtype_and_back():
    table = tensor_table(GRAPH, FP16_IO, PROFILE)
    x = host_input(np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4), table["x"])
    assert x.dtype == np.float16 and x.flags.c_contiguous
    ids = host_input(np.arange(24).reshape(2, 12)[:, ::1], table["tokens"])
    assert ids.dtype == np.int64
    mask = host_input(np.ones((2, 12), bool), table["mask"])
    assert mask.dtype == np.bool_ and mask.nbytes == 24
    out = host_output(np.ones((2, 2, 12, 16), np.float16), table["kv"])
    assert out.dtype == np.float32   # the runtime sees the manifest's dtype


def test_a_batch_past_the_plan_is_refused_before_it_overruns_a_buffer():
    table = tensor_table(GRAPH, FP16_IO, PROFILE)
    with pytest.raises(ObservationError, match=r"shape \(5, 4\) exceeds the engine's largest \(4, 4\)"):
        host_input(np.zeros((5, 4), np.float32), table["x"])


def test_an_engine_that_does_not_fit_the_manifest_is_a_bundle_error():
    with pytest.raises(BundleError, match="'tokens': the engine binds float32, the manifest says int64"):
        tensor_table(GRAPH, {**FP16_IO, "tokens": "FLOAT"}, PROFILE)
    with pytest.raises(BundleError, match="the engine has no tensor 'kv'"):
        tensor_table(GRAPH, {k: v for k, v in FP16_IO.items() if k != "kv"}, PROFILE)


def test_a_device_buffer_must_already_have_the_engine_dtype():
    table = tensor_table(GRAPH, FP16_IO, PROFILE)
    check_device_input(np.float16, (2, 4), table["x"])
    with pytest.raises(BundleError, match="device buffer of float32 cannot feed an engine input of float16"):
        check_device_input(np.float32, (2, 4), table["x"])


class _Cuda:
    """Records the CUDA runtime calls of a capture (cuda-python's (err, value) convention)."""

    class cudaStreamCaptureMode:
        cudaStreamCaptureModeThreadLocal = 1

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        def call(*args):
            self.calls.append(name)
            return (0, f"{name}#{len(self.calls)}") if name in ("cudaStreamEndCapture", "cudaGraphInstantiate") \
                else (0,)
        return call


class _Context:
    def __init__(self):
        self.executions = 0

    def execute_async_v3(self, stream):
        self.executions += 1
        return True


def test_a_step_is_run_then_captured_then_replayed_per_shape():
    cuda, ctx = _Cuda(), _Context()
    step = CudaGraphStep(cuda, ctx, "stream")
    small, big = ((1, 8, 32),), ((2, 8, 32),)
    assert [step.run(small) for _ in range(4)] == ["plain", "captured", "replayed", "replayed"]
    assert ctx.executions == 2   # the warm-up and the captured one; replays launch the graph
    assert cuda.calls.count("cudaStreamBeginCapture") == 1 and cuda.calls.count("cudaGraphLaunch") == 3
    assert step.run(big) == "plain" and step.run(big) == "captured" and len(step.graphs) == 2
    step.close()
    assert cuda.calls.count("cudaGraphExecDestroy") == 2 and not step.graphs
