"""GR00T N1.5 (LeRobot's `groot`) exported for OpenVINO (its bundle keeps the ONNX, so ONNX Runtime runs the same
bundle) vs LeRobot 0.4.4's own preprocessor -> policy -> postprocessor on shared noise: a two-camera batch of two
(LeRobot uses the first task for both rows), one camera missing, frames that the Eagle processor resizes (40x48 to
the 32x32 tile: torchvision's uint8 bicubic), and 15 select_action steps over three chunks with
n_action_steps (6) < the action horizon (8). The checkpoint was built and saved by LeRobot itself from a reduced
config (scripts/lerobot_reference_groot.py, `make parity-ref-groot`, in `make test`); the test skips, saying so,
when the references are absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import reference_dir

TOL = 1e-4  # normalized units (MIN_MAX: half the range), full chunk (the contract)
pytestmark = pytest.mark.parity
REF = reference_dir("groot-current", "LEROBOT_EDGE_GROOT_REFERENCE_DIR")
needs_ref = pytest.mark.skipif(REF is None or not (REF / "DONE").is_file(),
                               reason="no LeRobot 0.4.4 groot references: run `make parity-ref-groot` "
                                      "(needs .venv-lerobot)")
EAGLE = "lerobot_home/lerobot/eagle2hg-processor-groot-n1p5"
BACKENDS = ["onnxruntime", "openvino"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from lerobot_edge import export

    pytest.importorskip("openvino", reason="pip install 'lerobot-edge[openvino]'")
    # the checkpoint records its base model's directory (the reference's base/); the Eagle directory is passed;
    # config.json has no "type" (this venv's draccus 0.11 does not write it): policy_type says it
    return export(REF / "groot" / "checkpoint", tmp_path_factory.mktemp("groot") / "bundle", target="openvino",
                  policy_type="groot", vlm=str(REF / EAGLE))


def _obs(ref, t: int | None = None) -> dict:
    obs = {k[4:]: (ref[k] if t is None else ref[k][t]) for k in ref.files if k.startswith("obs.")}
    task = ref["task"]
    obs["task"] = str(task) if task.ndim == 0 else [str(x) for x in task]
    return obs


def _scale(policy) -> np.ndarray:
    st = policy.bundle.stats()["action"]
    return np.maximum((st["max"] - st["min"]) / 2, 1e-8)


@needs_ref
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["plain", "missing_camera", "resized_camera"])
def test_chunk_equals_lerobot(case, backend, bundle):
    from lerobot_edge import load_policy

    ref = np.load(REF / "groot" / f"{case}.npz")
    policy = load_policy(bundle, backend)
    obs = _obs(ref)
    n_cams = sum(k.startswith("observation.images.") for k in obs)
    np.testing.assert_array_equal(policy.prompt_ids(obs["task"], n_cams), ref["input_ids"][0])  # LeRobot's prompt
    got = policy.predict_action_chunk(obs, noise=ref["noise"])
    err = float(np.abs((got - ref["chunk"]) / _scale(policy)).max())
    print(f"groot {case} {backend}: max |err| {err:.3g} normalized units")
    assert got.shape == ref["chunk"].shape
    assert err <= TOL


@needs_ref
@pytest.mark.parametrize("backend", BACKENDS)
def test_select_action_sequence_equals_lerobot(backend, bundle):
    """LeRobot's queue (deque maxlen n_action_steps fed a whole chunk) keeps each chunk's last 6 of 8 actions."""
    from lerobot_edge import load_policy

    ref = np.load(REF / "groot" / "select.npz")
    policy = load_policy(bundle, backend)
    got, chunks = [], 0
    for t in range(ref["actions"].shape[0]):
        fresh = len(policy.queue) == 0
        got.append(policy.select_action(_obs(ref, t), noise=ref["noise"][chunks] if fresh else None))
        chunks += fresh
    err = float(np.abs((np.stack(got) - ref["actions"]) / _scale(policy)).max())
    print(f"groot select_action x{len(got)} {backend}: max |err| {err:.3g} normalized units")
    assert chunks == ref["noise"].shape[0] == 3
    assert err <= TOL


@needs_ref
def test_bundle_records_embodiment_padding_and_no_rtc(bundle):
    import json

    from lerobot_edge import load_policy

    rt = json.loads((Path(bundle) / "manifest.json").read_text())["runtime"]
    assert (rt["embodiment_tag"], rt["embodiment_id"]) == ("new_embodiment", 31)
    assert (rt["max_state_dim"], rt["max_action_dim"], rt["action_horizon"]) == (64, 32, 8)
    with pytest.raises(ValueError, match="no real-time chunking"):
        load_policy(bundle, rtc="guided")
