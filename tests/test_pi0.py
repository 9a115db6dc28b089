"""Pi0 without LeRobot: strict key loading, the three-graph export, the flow-matching runtime (vs our eager
torch modules through the same runtime), RTC guidance and host image resizing."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

import tiny_zoo

TOL = 1e-4  # normalized units, full chunk


# the tiny bundles come from tests/tiny_zoo.py: exported once per run, shared with the hostile suites
@pytest.fixture(scope="session")
def pi0_bundle(tmp_path_factory):
    return tiny_zoo.build("pi0", tmp_path_factory)


@pytest.fixture(scope="session")
def pi0_checkpoint(pi0_bundle):
    return pi0_bundle.parent / "ckpt"


@pytest.fixture(scope="session")
def pi05_bundle(tmp_path_factory):
    return tiny_zoo.build("pi05", tmp_path_factory)


@pytest.fixture(scope="session")
def pi05_checkpoint(pi05_bundle):
    return pi05_bundle.parent / "ckpt"


def _obs(rng, batch=None, cameras=("observation.images.top", "observation.images.wrist")):
    shapes = {"observation.images.top": (3, 96, 128), "observation.images.wrist": (3, 64, 64)}
    pre = () if batch is None else (batch,)
    obs = {k: rng.random((*pre, *shapes[k])).astype(np.float32) for k in cameras}
    obs["observation.state"] = rng.standard_normal((*pre, 6)).astype(np.float32)
    obs["task"] = "pick the red cube" if batch is None else ["pick the red cube", "open the drawer"][:batch]
    return obs


def _err(policy, a, b) -> float:
    st = policy.bundle.stats()["action"]
    scale = st["std"] if policy.manifest["normalization"]["action"] == "MEAN_STD" else (st["q99"] - st["q01"]) / 2
    return float(np.abs((a - b) / scale).max())


def test_strict_loading_names_offending_keys(pi0_checkpoint, tmp_path):
    from safetensors.numpy import load_file, save_file

    from lerobot_edge.checkpoint import load_checkpoint
    from lerobot_edge.errors import CheckpointError
    from lerobot_edge.policies import build_plan

    bad = tmp_path / "bad"
    shutil.copytree(pi0_checkpoint, bad)
    w = load_file(str(bad / "model.safetensors"))
    w["model.extra.weight"] = np.zeros(3, np.float32)
    del w["model.state_proj.bias"]
    save_file(w, str(bad / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"(?s)missing keys.*state_proj.bias.*unexpected keys.*model.extra"):
        build_plan(load_checkpoint(bad))


def test_bundle_graphs_and_tokenizer(pi0_bundle):
    m = json.loads((pi0_bundle / "manifest.json").read_text())
    assert [g["name"] for g in m["graphs"]] == ["vision", "prefix", "denoise"]
    assert m["validation"]["passed"] is True
    assert "tokenizer.json" in m["files"]["common"]
    assert m["noise_shape"] == ["batch", 8, 32] and m["runtime"]["kind"] == "flow"


def test_missing_tokenizer_says_how_to_provide_it(pi0_checkpoint, tmp_path):
    from lerobot_edge import export
    from lerobot_edge.errors import CheckpointError

    with pytest.raises(CheckpointError, match="--tokenizer"):
        export(pi0_checkpoint, tmp_path / "b", tokenizer=str(tmp_path / "nowhere"))


@pytest.mark.parametrize("rtc", [False, True])
def test_runtime_matches_eager_torch(pi0_bundle, pi0_checkpoint, rtc):
    from lerobot_edge import load_policy
    from lerobot_edge.exporters.torch_session import load_torch_policy

    rng = np.random.default_rng(3)
    obs, noise = _obs(rng, 2), rng.standard_normal((2, 8, 32)).astype(np.float32)
    kw = {"inference_delay": 2, "prev_chunk_left_over": rng.standard_normal((5, 5)).astype(np.float32)} if rtc else {}
    ours = load_policy(pi0_bundle, rtc="guided" if rtc else None)
    eager = load_torch_policy(str(pi0_bundle), str(pi0_checkpoint))
    if rtc:
        eager._configure_rtc("guided", None)
    got, want = ours.predict_action_chunk(obs, noise=noise, **kw), eager.predict_action_chunk(obs, noise=noise, **kw)
    assert got.shape == (2, 8, 5)
    assert _err(ours, got, want) <= TOL
    assert set(ours.timings) == {"preprocess", "vision", "prefix", "denoise", "sampler", "postprocess", "total"}
    if rtc:  # guidance must change the chunk
        plain = ours.predict_action_chunk(obs, noise=noise)
        assert np.abs(plain - got).max() > 1e-3


def test_select_action_queue_missing_camera_and_noise_checks(pi0_bundle):
    from lerobot_edge import load_policy
    from lerobot_edge.errors import ObservationError

    policy = load_policy(pi0_bundle, seed=0, n_action_steps=3)
    rng = np.random.default_rng(0)
    obs = _obs(rng, cameras=("observation.images.top",))     # wrist missing: -1 image, mask 0
    actions = [policy.select_action(obs) for _ in range(7)]
    assert all(a.shape == (5,) for a in actions)
    assert not np.allclose(actions[0], actions[3])             # a new chunk after 3 steps
    with pytest.raises(ObservationError, match="noise"):
        policy.predict_action_chunk(obs, noise=np.zeros((1, 8, 5), np.float32))
    with pytest.raises(ObservationError, match="task"):
        policy.predict_action_chunk({k: v for k, v in obs.items() if k != "task"})
    with pytest.warns(UserWarning, match="ignored"):
        policy.predict_action_chunk(obs, inference_delay=1, prev_chunk_left_over=np.zeros((4, 5), np.float32))
    with pytest.warns(UserWarning, match="num_inference_steps"):
        load_policy(pi0_bundle, num_inference_steps=4)


def test_prefix_weight_schedules():
    from lerobot_edge.kernels.rtc import prefix_weights

    np.testing.assert_allclose(prefix_weights(2, 5, 8, "ZEROS"), [1, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(prefix_weights(2, 5, 8, "ONES"), [1, 1, 1, 1, 1, 0, 0, 0])
    np.testing.assert_allclose(prefix_weights(2, 5, 8, "LINEAR"), [1, 1, 0.75, 0.5, 0.25, 0, 0, 0], rtol=1e-6)
    lin = np.array([0.75, 0.5, 0.25])
    np.testing.assert_allclose(prefix_weights(2, 5, 8, "EXP")[2:5], lin * np.expm1(lin) / (math.e - 1), rtol=1e-6)
    np.testing.assert_allclose(prefix_weights(7, 5, 8, "LINEAR"), [1, 1, 1, 1, 1, 0, 0, 0])  # start = min


def test_guidance_weight_formula():
    from lerobot_edge.kernels.rtc import guidance_weight

    assert guidance_weight(1.0, 10.0) == np.float32(10.0)
    for t in (0.9, 0.5, 0.2):
        assert guidance_weight(t, 100.0) == pytest.approx(min((t * t + (1 - t) ** 2) / (t * (1 - t)), 100.0), rel=1e-5)
    assert guidance_weight(0.1, 5.0) == np.float32(5.0)


@pytest.mark.parametrize("hw", [(96, 128), (64, 64), (480, 640), (300, 17)])
def test_resize_with_pad_matches_torch(hw):
    import torch
    import torch.nn.functional as F

    from lerobot_edge.kernels.image import resize_with_pad

    img = np.random.default_rng(0).random((2, 3, *hw)).astype(np.float32)
    ratio = max(hw[1] / 224, hw[0] / 224)
    rh, rw = int(hw[0] / ratio), int(hw[1] / ratio)
    want = F.interpolate(torch.from_numpy(img), size=(rh, rw), mode="bilinear", align_corners=False).clamp(0, 1)
    ph, pw = (224 - rh) // 2, (224 - rw) // 2
    want = F.pad(want, (pw, 224 - rw - pw, ph, 224 - rh - ph)).numpy()
    np.testing.assert_allclose(resize_with_pad(img, 224), want, atol=2e-6)


def test_pi05_runtime_matches_eager_torch_and_uses_the_state(pi05_bundle, pi05_checkpoint):
    from lerobot_edge import load_policy
    from lerobot_edge.exporters.torch_session import load_torch_policy

    m = json.loads((pi05_bundle / "manifest.json").read_text())
    assert "state" not in {i["name"] for g in m["graphs"] for i in g["inputs"]}  # the state is in the prompt
    rng = np.random.default_rng(5)
    obs, noise = _obs(rng, 2), rng.standard_normal((2, 8, 32)).astype(np.float32)
    ours = load_policy(pi05_bundle)
    eager = load_torch_policy(str(pi05_bundle), str(pi05_checkpoint))
    got = ours.predict_action_chunk(obs, noise=noise)
    assert _err(ours, got, eager.predict_action_chunk(obs, noise=noise)) <= TOL
    moved = dict(obs, **{"observation.state": obs["observation.state"] + 3.0})
    assert np.abs(ours.predict_action_chunk(moved, noise=noise) - got).max() > 1e-3


def test_pi05_prompt_discretizes_the_normalized_state():
    from lerobot_edge.runtime.policies.vla_inputs import pi05_prompts

    state = np.array([[-1.0, 0.0, 0.999, 2.0]], np.float32)
    assert pi05_prompts("pick_up\n", state) == ["Task: pick up, State: 0 128 255 255;\nAction: "]
