"""Device-resident I/O for ONNX Runtime (backends/ort_binding.py), on ORT's CPU provider with IOBinding: the same
code the CUDA / TensorRT providers run, with buffers on "cpu". The GPU cases skip where ORT has no CUDA provider."""

from __future__ import annotations

import numpy as np
import pytest

from lerobot_edge.backends import get_backend
from lerobot_edge.backends.onnxruntime import with_cuda_graph
from lerobot_edge.bundle import Bundle, BundleWriter, GraphSpec, IOSpec
from tiny_zoo import tiny_bundle

ort = pytest.importorskip("onnxruntime")
HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs onnxruntime-gpu with the CUDA provider and an NVIDIA GPU "
                                                     f"(providers here: {ort.get_available_providers()})")


@pytest.fixture(scope="module")
def affine(tmp_path_factory) -> Bundle:
    """y = 2 x + 1 over (batch, 4), and z = sum over the row (batch,): two outputs, one dynamic axis."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch"])
    nodes = [helper.make_node("Mul", ["x", "two"], ["t"]), helper.make_node("Add", ["t", "one"], ["y"]),
             helper.make_node("ReduceSum", ["x", "axes"], ["z"], keepdims=0)]
    inits = [helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0]),
             helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0]),
             helper.make_tensor("axes", TensorProto.INT64, [1], [1])]
    model = helper.make_model(helper.make_graph(nodes, "affine", [x], [y, z], inits),
                              opset_imports=[helper.make_opsetid("", 18)])
    w = BundleWriter(tmp_path_factory.mktemp("binding") / "b")
    onnx.save(model, str(w.abspath("affine.onnx")))
    w.add("affine.onnx", "onnx")
    spec = GraphSpec("affine", "affine.onnx", (IOSpec("x", ("batch", 4)),),
                     (IOSpec("y", ("batch", 4)), IOSpec("z", ("batch",))))
    return Bundle(w.stage, {"graphs": [spec.to_json()], "files": w.files, "precision": "fp32"})


def _session(bundle: Bundle, **options):
    cls = get_backend("onnxruntime")
    return cls().load(bundle.graphs["affine"], bundle, cls.check_options(options))


def test_buffers_are_allocated_once_per_input_shape(affine):
    s = _session(affine, io_binding=True)
    assert s.bound is not None and s.bound.device_type == "cpu"
    ptrs = None
    for i in range(4):
        x = np.full((2, 4), float(i), np.float32)
        out = s.run({"x": x})
        np.testing.assert_array_equal(out["y"], 2 * x + 1)
        np.testing.assert_array_equal(out["z"], x.sum(1))
        (slot,) = s.bound.slots.values()
        now = (slot.inputs["x"].data_ptr(), slot.outputs["y"].data_ptr(), slot.outputs["z"].data_ptr())
        assert ptrs in (None, now)   # the same three buffers every run
        ptrs = now
    s.run({"x": np.ones((3, 4), np.float32)})   # a new batch size: its own buffers, the first ones kept
    assert len(s.bound.slots) == 2 and slot.runs == 4


def test_returned_arrays_are_not_overwritten_by_the_next_run(affine):
    """A host buffer's numpy() is a view of the reused buffer: the runner must hand out copies."""
    s = _session(affine, io_binding=True)
    first = s.run({"x": np.zeros((2, 4), np.float32)})["y"]
    s.run({"x": np.full((2, 4), 5.0, np.float32)})
    np.testing.assert_array_equal(first, np.ones((2, 4), np.float32))


def test_kept_output_is_the_device_buffer_and_feeds_another_session(affine):
    a, b = _session(affine, io_binding=True), _session(affine, io_binding=True)
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    handle = a.run({"x": x}, keep=("y",))["y"]
    assert isinstance(handle, ort.OrtValue)
    assert handle.data_ptr() == next(iter(a.bound.slots.values())).outputs["y"].data_ptr()
    out = b.run({"x": handle})
    (slot,) = b.bound.slots.values()
    assert "x" not in slot.inputs            # bound where it is: no input buffer, no host copy
    np.testing.assert_array_equal(out["y"], 2 * (2 * x + 1) + 1)


def test_an_output_fed_back_as_input_is_never_read_while_written(affine):
    """x <- f(x) kept on the device: the output alternates between two buffers instead of aliasing its input."""
    s = _session(affine, io_binding=True)
    x = s.run({"x": np.ones((1, 4), np.float32)}, keep=("y",))["y"]         # 3
    for _ in range(4):
        x = s.run({"x": x}, keep=("y",))["y"]                                # 7, 15, 31, 63
    np.testing.assert_array_equal(x.numpy(), np.full((1, 4), 63.0, np.float32))


def test_binding_options_are_checked(affine):
    with pytest.raises(ValueError, match="cuda_graph=true needs the CUDA or TensorRT provider"):
        _session(affine, cuda_graph=True)
    with pytest.raises(ValueError, match="io_binding='sometimes'"):
        _session(affine, io_binding="sometimes")
    with pytest.raises(ValueError, match="cuda_graph=true needs io_binding"):
        _session(affine, cuda_graph=True, io_binding=False)
    with pytest.raises(ValueError, match="cuda_graph='yes': expected true or false"):
        _session(affine, cuda_graph="yes")
    with pytest.raises(ValueError, match="device='GPU'"):
        _session(affine, device="GPU")
    with pytest.raises(ValueError, match=r"\['cuda_graphs'\] unknown to backend 'onnxruntime'.*cuda_graph"):
        _session(affine, cuda_graphs=True)
    assert _session(affine).bound is None     # CPU default: plain session.run, as before


def test_cuda_graph_turns_on_each_gpu_providers_capture_option():
    providers = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    opts = with_cuda_graph(providers, [{"device_id": 1}, {"device_id": 1}, {}])
    assert opts == [{"device_id": 1, "trt_cuda_graph_enable": True}, {"device_id": 1, "enable_cuda_graph": "1"}, {}]


@pytest.mark.parametrize("policy", ["pi0", "diffusion"])
def test_policies_with_kept_handles_give_the_same_chunk_through_the_binding(policy, request):
    """pi0 keeps its KV cache across the denoise steps, Diffusion its global_cond: the bound path gives the chunk
    of the plain path bit for bit, and reuses the same buffers for the next chunk."""
    from lerobot_edge import load_policy
    from lerobot_edge.runtime.observations import random_observation

    bundle = tiny_bundle(policy, request)
    plain, bound = (load_policy(bundle, seed=0, backend_options=o) for o in ({}, {"io_binding": True}))
    m = plain.manifest
    rng = np.random.default_rng(0)
    obs = {**random_observation(m["observations"], rng), **({"task": "pick the cube"} if plain.takes_task else {})}
    noise = rng.standard_normal([1 if isinstance(d, str) else d for d in m["noise_shape"]][1:]).astype(np.float32)
    keeper = "prefix" if policy == "pi0" else "encoder"
    for _ in range(2):
        np.testing.assert_array_equal(bound.predict_action_chunk(obs, noise=noise),
                                      plain.predict_action_chunk(obs, noise=noise))
    slots = bound.sessions[keeper].bound.slots
    assert len(slots) == 1 and next(iter(slots.values())).runs == 2
    den = bound.sessions["denoise"].bound.slots
    assert len(den) == 1    # the kept handle is bound, not a new signature per chunk


@needs_cuda
def test_cuda_provider_keeps_outputs_on_the_gpu_and_replays_a_cuda_graph(affine):
    s = _session(affine, device="cuda", cuda_graph=True)
    assert s.bound.device_type == "cuda" and s.providers[0] == "CUDAExecutionProvider"
    for i in range(4):   # ORT captures after its warm-up runs, then replays
        x = np.full((2, 4), float(i), np.float32)
        handle = s.run({"x": x}, keep=("y",))["y"]
        assert handle.device_name().lower() == "cuda"
        np.testing.assert_array_equal(handle.numpy(), 2 * x + 1)
