"""int8 calibration on real observations: a LeRobot v3 dataset (parquet + mp4) or an .npz runs through the
runtime's own preprocessing and host loop on the fp32 graphs; every graph is calibrated on the feeds it really
receives (Diffusion: the denoise inputs along a seeded sampling trajectory); bad input is a typed error.
An int8 export through the API with calibration= is tests/test_targets.py::test_int8_openvino."""

from __future__ import annotations

import numpy as np
import pytest

from lerobot_edge import export
from lerobot_edge.bundle import Bundle
from lerobot_edge.errors import CheckpointError, ObservationError
from lerobot_edge.exporters.calibration import load_observations, record_feeds
from tiny_zoo import tiny_bundle

pytest.importorskip("av", reason="calibration from a dataset needs PyAV (pip install 'lerobot-edge[dataset]')")
pytest.importorskip("pyarrow", reason="calibration from a dataset needs pyarrow")

from lerobot_edge.testing.dataset import write_v3_dataset  # noqa: E402

ACT_KEYS = {"observation.state", "observation.images.top"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_v3_dataset(tmp_path_factory.mktemp("cal") / "ds", cameras={"observation.images.top": (48, 64)},
                            state_dim=6, action_dim=4, episode_lengths=[6, 5])


def test_dataset_feeds_are_the_runtimes_preprocessed_observations(dataset, act_tiny_bundle):
    episodes = load_observations(dataset, ACT_KEYS)
    assert [len(e) for e in episodes] == [6, 5] and all(e[0]["task"] == "insert the peg" for e in episodes)
    bundle = Bundle.open(act_tiny_bundle)
    feeds = record_feeds(bundle, episodes)["act"]
    assert len(feeds) == 11 and feeds[0]["observation.images.top"].shape == (1, 3, 48, 64)
    # the image the graph saw is the frame cast, scaled and normalized with the bundle's stats, as the runtime does
    frame = episodes[0][0]["observation.images.top"]
    st = bundle.stats()["observation.images.top"]
    want = (frame.transpose(2, 0, 1)[None] / 255.0 - st["mean"]) / st["std"]
    np.testing.assert_allclose(feeds[0]["observation.images.top"], want, atol=1e-5)


def test_diffusion_calibrates_on_its_sampling_trajectory(request, tmp_path):
    bundle = Bundle.open(tiny_bundle("diffusion", request))
    keys = set(bundle.manifest["observations"])
    rng = np.random.default_rng(0)
    obs = {k: (rng.integers(0, 256, (4, *o["shape"][1:], o["shape"][0]), dtype=np.uint8) if o["kind"] == "image"
               else rng.normal(size=(4, *o["shape"])).astype(np.float32))
           for k, o in bundle.manifest["observations"].items()}
    np.savez(tmp_path / "d.npz", **obs)
    feeds = record_feeds(bundle, load_observations(tmp_path / "d.npz", keys))
    steps = bundle.manifest["runtime"]["num_inference_steps"]
    assert len(feeds["encoder"]) == 4 and len(feeds["denoise"]) == 4 * steps
    first = [float(f["timestep"][0]) for f in feeds["denoise"][:steps]]
    assert first == sorted(first, reverse=True) and len(set(first)) == steps   # one chunk's schedule, in order
    x = [f["sample"] for f in feeds["denoise"][:steps]]
    assert all(np.abs(a - b).max() > 1e-4 for a, b in zip(x, x[1:]))        # x_t moves along the trajectory
    again = record_feeds(bundle, load_observations(tmp_path / "d.npz", keys))   # seeded: the same trajectory
    np.testing.assert_array_equal(again["denoise"][5]["sample"], feeds["denoise"][5]["sample"])


def _ranges(model) -> list[float]:
    return [float(np.asarray(op.input_value(2).get_node().get_data()).ravel()[0])
            for op in model.get_ordered_ops() if op.get_type_name() == "FakeQuantize"
            and op.input_value(0).get_node().get_type_name() != "Constant"]


def test_recorded_feeds_change_the_activation_scales(dataset, act_tiny_bundle):
    pytest.importorskip("nncf", reason="int8 needs NNCF (pip install nncf)")
    import nncf
    import openvino as ov

    from lerobot_edge.exporters.ov_int8 import _w8a8
    from lerobot_edge.policies import build_plan  # noqa: F401  (torch side: the plan's sampler)

    bundle = Bundle.open(act_tiny_bundle)
    recorded = record_feeds(bundle, load_observations(dataset, ACT_KEYS))["act"]
    synthetic = [{i.name: np.random.default_rng(k).standard_normal([1, *i.shape[1:]]).astype(np.float32)
                  for i in bundle.graphs["act"].inputs} for k in range(len(recorded))]
    onnx = str(bundle.file(bundle.graphs["act"].file))
    real, synth = (_ranges(_w8a8(nncf, ov.convert_model(onnx), feeds)) for feeds in (recorded, synthetic))
    assert len(real) == len(synth) > 0 and real != synth
    assert max(abs(a - b) / max(abs(b), 1e-6) for a, b in zip(real, synth)) > 0.05


def test_bad_calibration_input_is_a_typed_error_naming_it(act_tiny_checkpoint, act_tiny_bundle, tmp_path):
    with pytest.raises(ValueError, match="--precision fp32 uses no calibration"):
        export(act_tiny_checkpoint, tmp_path / "x", "onnx", policy_type="act", calibration=str(tmp_path))
    with pytest.raises(ObservationError, match="expected a LeRobot v3 dataset directory"):
        load_observations(tmp_path / "missing.npz", ACT_KEYS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no meta/info.json"):
        load_observations(tmp_path / "empty", ACT_KEYS)
    np.savez(tmp_path / "other.npz", joints=np.zeros((3, 6), np.float32))
    with pytest.raises(ObservationError, match=r"no observation key.*joints"):
        load_observations(tmp_path / "other.npz", ACT_KEYS)
    np.savez(tmp_path / "len.npz", **{"observation.state": np.zeros((3, 6), np.float32),
                                      "observation.images.top": np.zeros((2, 48, 64, 3), np.uint8)})
    with pytest.raises(ObservationError, match="disagree on the number of samples"):
        load_observations(tmp_path / "len.npz", ACT_KEYS)
    np.savez(tmp_path / "scalar.npz", **{"observation.state": np.float32(1)})
    with pytest.raises(ObservationError, match="'observation.state' must have a leading samples axis"):
        load_observations(tmp_path / "scalar.npz", ACT_KEYS)
    np.savez(tmp_path / "shape.npz", **{"observation.state": np.zeros((3, 5), np.float32)})
    with pytest.raises(ObservationError, match="observation.state"):   # the runtime's own check, at its door
        record_feeds(Bundle.open(act_tiny_bundle), load_observations(tmp_path / "shape.npz", ACT_KEYS))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ObservationError, match="cannot read the .npz"):
        load_observations(tmp_path / "bad.npz", ACT_KEYS)
