"""GR00T N1.5 (`groot`) without LeRobot: strict loading and its allow-list, the sources of its three configs, the
runtime's LeRobot-groot rules (first task for the batch, sorted cameras, bounded queue, no RTC, noise shape), on
the zoo's tiny checkpoint and bundle (exported once per run). LeRobot parity: tests/test_parity_groot.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tiny_zoo

from lerobot_edge.errors import CheckpointError, ObservationError
from lerobot_edge.kernels.bicubic import resize_bicubic_u8


@pytest.fixture(scope="module")
def bundle(request):
    return tiny_zoo.tiny_bundle("groot", request)


@pytest.fixture()
def ckpt(bundle, tmp_path):
    """A writable copy of the tiny checkpoint with its -base and -eagle directories (paths rewritten)."""
    src = Path(bundle).parent / "ckpt"
    for suffix in ("", "-base", "-eagle"):
        shutil.copytree(f"{src}{suffix}", tmp_path / f"ckpt{suffix}")
    cfg = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    cfg.update(base_model_path=str(tmp_path / "ckpt-base"), tokenizer_assets_repo=str(tmp_path / "ckpt-eagle"))
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(cfg))
    return tmp_path / "ckpt"


def _obs(rng, policy, cams=None):
    spec = policy.observation_spec
    obs = {k: rng.integers(0, 256, (s["shape"][1], s["shape"][2], 3), dtype=np.uint8)
           for k, s in spec.items() if s["kind"] == "image" and (cams is None or k in cams)}
    return {**obs, "observation.state": rng.normal(size=6).astype(np.float32), "task": "pick the cube"}


def _plan(ckpt):
    from lerobot_edge.checkpoint import load_checkpoint
    from lerobot_edge.policies import build_plan

    return build_plan(load_checkpoint(ckpt))


def test_weights_load_strictly_with_the_lm_head_allow_listed(ckpt):
    from safetensors.numpy import load_file, save_file

    w = load_file(str(ckpt / "model.safetensors"))
    assert any(k.endswith("language_model.lm_head.weight") for k in w)   # present, unused, allowed
    w["_groot_model.action_head.extra.weight"] = np.zeros(3, np.float32)
    w.pop("_groot_model.action_head.vlln.weight")
    save_file(w, str(ckpt / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing keys \(1\).*vlln.weight.*\n.*unexpected keys \(1\).*extra"):
        _plan(ckpt)


def test_an_unreachable_eagle_directory_names_the_option(ckpt):
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["tokenizer_assets_repo"] = str(ckpt.parent / "nowhere")
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="--vlm"):
        _plan(ckpt)


def test_manifest_records_embodiment_padding_and_prompts(bundle):
    rt = json.loads((Path(bundle) / "manifest.json").read_text())["runtime"]
    assert (rt["embodiment_id"], rt["max_state_dim"], rt["max_action_dim"]) == (31, 64, 32)
    assert rt["cameras"] == sorted(rt["cameras"]) and set(rt["prompts"]) == {"1", "2"}
    assert all(rt["task_marker"] in p for p in rt["prompts"].values())


def test_batch_uses_the_first_task_and_a_missing_camera_shortens_the_prompt(bundle):
    p = tiny_zoo.load(bundle)
    two, one = p.prompt_ids("pick the cube", 2), p.prompt_ids(["pick the cube", "open the drawer"], 1)
    assert len(two) >= len(one) + p.tokens_per_image    # one image's tokens and its markers fewer
    assert np.array_equal(one, p.prompt_ids("pick the cube", 1))
    rng = np.random.default_rng(0)
    o = _obs(rng, p)
    batch = {**{k: np.stack([v, v]) for k, v in o.items() if k != "task"}, "task": ["pick the cube", "other"]}
    noise = rng.standard_normal((2, 8, 32)).astype(np.float32)
    got = p.predict_action_chunk(batch, noise=noise)
    alone = p.predict_action_chunk({**o, "task": "pick the cube"}, noise=noise[1])
    np.testing.assert_allclose(got[1], alone, atol=1e-5)          # row 2 ran with the first row's task
    cams = sorted(k for k in o if k.startswith("observation.images."))
    partial = p.predict_action_chunk(_obs(np.random.default_rng(0), p, cams[:1]), noise=noise[0])
    assert partial.shape == (8, 5) and np.isfinite(partial).all()


def test_queue_keeps_the_last_n_action_steps_of_a_chunk(bundle):
    p = tiny_zoo.load(bundle)
    rng = np.random.default_rng(1)
    o, noise = _obs(rng, p), rng.standard_normal((8, 32)).astype(np.float32)
    chunk = p.predict_action_chunk(o, noise=noise)
    got = np.stack([p.select_action(o, noise=noise) for _ in range(p.n_action_steps)])
    np.testing.assert_allclose(got, chunk[-p.n_action_steps:], atol=1e-6)   # LeRobot's deque(maxlen) rule


def test_rtc_and_bad_noise_are_refused(bundle):
    from lerobot_edge import load_policy

    with pytest.raises(ValueError, match="no real-time chunking"):
        load_policy(bundle, rtc="guided")
    p = tiny_zoo.load(bundle)
    o = _obs(np.random.default_rng(2), p)
    with pytest.raises(ValueError, match="no real-time chunking"):
        p.predict_action_chunk(o, inference_delay=2, prev_chunk_left_over=np.zeros((4, 5), np.float32))
    with pytest.raises(ObservationError, match=r"noise: expected shape \(1, 8, 32\)"):
        p.predict_action_chunk(o, noise=np.zeros((1, 50, 32), np.float32))


def test_bicubic_resize_keeps_a_tile_sized_frame_and_constant_images():
    x = np.random.default_rng(0).integers(0, 256, (1, 3, 32, 32)).astype(np.float32)
    assert resize_bicubic_u8(x, 32, 32) is x
    flat = np.full((1, 3, 40, 48), 77, np.float32)
    np.testing.assert_array_equal(resize_bicubic_u8(flat, 32, 32), np.full((1, 3, 32, 32), 77, np.float32))


def test_host_timestep_codes_equal_the_torch_twin():
    import torch

    from lerobot_edge.kernels.groot_time import time_code
    from lerobot_edge.policies.groot.head import time_codes, time_freqs

    b = np.array([0, 250, 500, 750, 999])
    a, d = time_codes(torch.from_numpy(b), 48)
    fa, fd = (f.numpy() for f in time_freqs(48))
    np.testing.assert_allclose(time_code(b, fa, cos_first=False), a.numpy(), atol=2e-6)
    np.testing.assert_allclose(time_code(b, fd, cos_first=True), d.numpy(), atol=2e-6)


@pytest.mark.parametrize("craft, match", [
    (lambda m: m["runtime"]["prompts"].pop("1"), "no entry for 1 image"),
    (lambda m: m["runtime"]["time_freqs"].update(file="tokenizer.json"), "runtime.time_freqs 'tokenizer.json'"),
    (lambda m: m["runtime"].pop("time_freqs"), "runtime.time_freqs: missing"),
    (lambda m: m["runtime"]["tokenizer"].update(file="unverified.json"), "unverified.json: not a checksummed file"),
])
def test_crafted_groot_manifests_are_bundle_errors(bundle, tmp_path, craft, match):
    """A resealed manifest whose groot runtime section lies is refused at load or at the first call, by name."""
    from test_hostile import edit_manifest

    from lerobot_edge.errors import BundleError

    b = tmp_path / "b"
    shutil.copytree(bundle, b)
    shutil.copy(b / "tokenizer.json", b / "unverified.json")
    edit_manifest(b, craft)
    with pytest.raises(BundleError, match=match):
        p = tiny_zoo.load(b)
        cams = sorted(k for k, s in p.observation_spec.items() if s["kind"] == "image")
        p.predict_action_chunk(_obs(np.random.default_rng(3), p, cams[:1]))
