"""One contract for every installed backend (Polygraphy-style): numpy in/out, device handles kept between
runs, IO checked against the manifest, wrong inputs refused with ObservationError."""

from __future__ import annotations

import numpy as np
import pytest

from lerobot_edge.backends import get_backend
from lerobot_edge.registry import BACKENDS as REGISTERED
from lerobot_edge.bundle import Bundle, BundleWriter, GraphSpec, IOSpec
from lerobot_edge.errors import BundleError, ObservationError

BACKENDS = list(REGISTERED)  # the ones not installed here skip with the reason


@pytest.fixture(scope="module")
def affine_bundle(tmp_path_factory) -> Bundle:
    """y = 2 x + 1 over (batch, 4): the smallest graph that shows every part of the contract."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    nodes = [helper.make_node("Mul", ["x", "two"], ["t"]), helper.make_node("Add", ["t", "one"], ["y"])]
    inits = [helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0]), helper.make_tensor("one", TensorProto.FLOAT,
                                                                                          [1], [1.0])]
    model = helper.make_model(helper.make_graph(nodes, "affine", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 18)])
    w = BundleWriter(tmp_path_factory.mktemp("contract") / "b")
    onnx.save(model, str(w.abspath("affine.onnx")))
    w.add("affine.onnx", "onnx")
    spec = GraphSpec("affine", "affine.onnx", (IOSpec("x", ("batch", 4)),), (IOSpec("y", ("batch", 4)),))
    return Bundle(w.stage, {"graphs": [spec.to_json()], "files": w.files, "precision": "fp32"})


def _session(name, bundle):
    cls = get_backend(name)
    if not cls.is_available():
        pytest.skip(f"backend {name!r} is not installed here ({cls.install_hint})")
    return cls().load(bundle.graphs["affine"], bundle, {})


@pytest.mark.parametrize("name", BACKENDS)
def test_numpy_in_numpy_out(name, affine_bundle):
    s = _session(name, affine_bundle)
    for batch in (1, 3):
        x = np.arange(4 * batch, dtype=np.float32).reshape(batch, 4)
        out = s.run({"x": x})
        assert set(out) == {"y"} and isinstance(out["y"], np.ndarray)
        np.testing.assert_allclose(out["y"], 2 * x + 1)


@pytest.mark.parametrize("name", BACKENDS)
def test_kept_outputs_feed_the_next_run_without_a_host_copy(name, affine_bundle):
    s = _session(name, affine_bundle)
    x = np.ones((2, 4), np.float32)
    handle = s.run({"x": x}, keep=("y",))["y"]
    assert not isinstance(handle, np.ndarray)
    again = s.run({"x": handle})["y"]          # a handle is a valid input of the same backend
    np.testing.assert_allclose(again, 2 * (2 * x + 1) + 1)


@pytest.mark.parametrize("name", BACKENDS)
def test_wrong_inputs_are_refused_before_the_engine(name, affine_bundle):
    s = _session(name, affine_bundle)
    with pytest.raises(ObservationError, match="missing inputs"):
        s.run({})
    with pytest.raises(ObservationError, match="expected shape"):
        s.run({"x": np.ones((2, 5), np.float32)})


@pytest.mark.parametrize("name", BACKENDS)
def test_manifest_that_disagrees_with_the_graph_is_refused(name, affine_bundle):
    bad = GraphSpec("affine", "affine.onnx", (IOSpec("x", ("batch", 5)),), (IOSpec("y", ("batch", 4)),))
    cls = get_backend(name)
    if not cls.is_available():
        pytest.skip(f"backend {name!r} is not installed here ({cls.install_hint})")
    with pytest.raises(BundleError, match="input 'x'"):
        cls().load(bad, affine_bundle, {})
