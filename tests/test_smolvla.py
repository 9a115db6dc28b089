"""SmolVLA without LeRobot: a tiny checkpoint written by tests/smolvla_layout.py -> ONNX bundle -> the flow-matching
runtime on onnxruntime and OpenVINO (fp32) vs our eager torch modules through the same runtime, with and without
RTC; "longest" vs max_length language padding; host resizing with SmolVLA's top-left padding; typed errors."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

import tiny_zoo
from lerobot_edge.testing.checkpoints.smolvla import write_smolvla_checkpoint, write_vlm_dir

TOL = 1e-4  # normalized units, full chunk


@pytest.fixture(scope="session")
def smolvla_vlm(tmp_path_factory):
    return write_vlm_dir(tmp_path_factory.mktemp("vlm") / "SmolVLM2-tiny")


# the tiny bundle comes from tests/tiny_zoo.py: exported once per run, shared with the hostile suites
@pytest.fixture(scope="session")
def smolvla_bundle(tmp_path_factory):
    return tiny_zoo.build("smolvla", tmp_path_factory)


@pytest.fixture(scope="session")
def smolvla_checkpoint(smolvla_bundle):
    return smolvla_bundle.parent / "ckpt"


@pytest.fixture(scope="session")
def smolvla_eager(smolvla_bundle, smolvla_checkpoint):
    from lerobot_edge.exporters.torch_session import load_torch_policy

    return load_torch_policy(str(smolvla_bundle), str(smolvla_checkpoint))


def _obs(rng, batch=None, cameras=("observation.images.top", "observation.images.wrist")):
    shapes = {"observation.images.top": (3, 48, 64), "observation.images.wrist": (3, 40, 40)}
    pre = () if batch is None else (batch,)
    obs = {k: rng.random((*pre, *shapes[k])).astype(np.float32) for k in cameras}
    obs["observation.state"] = rng.standard_normal((*pre, 6)).astype(np.float32)
    obs["task"] = "pick the red cube" if batch is None else ["pick the red cube", "open the drawer"][:batch]
    return obs


def _err(policy, a, b) -> float:
    return float(np.abs((a - b) / policy.bundle.stats()["action"]["std"]).max())


def test_bundle_graphs_tokenizer_and_settings(smolvla_bundle):
    m = json.loads((smolvla_bundle / "manifest.json").read_text())
    assert [g["name"] for g in m["graphs"]] == ["vision", "prefix", "denoise"]
    assert m["validation"]["passed"] is True
    assert {"tokenizer.json", "embedding.npy"} <= set(m["files"]["common"])   # the table is gathered on the host
    rt = m["runtime"]
    assert (rt["padding"], rt["clamp"], rt["state_token"], rt["image_size"]) == ("top_left", False, True, 64)
    assert rt["tokenizer"]["max_length"] == 16 and rt["tokenizer"]["pad_id"] == 2   # <|im_end|>
    prefix = next(g for g in m["graphs"] if g["name"] == "prefix")
    assert prefix["outputs"][0]["shape"] == [4, "batch", 2, 2 * 16 + 16 + 1, 16]     # cams*16 + L + state


@pytest.mark.parametrize("backend,rtc", [("onnxruntime", False), ("onnxruntime", True), ("openvino", True)])
def test_runtime_matches_eager_torch(smolvla_bundle, smolvla_eager, backend, rtc):
    from lerobot_edge import load_policy

    pytest.importorskip(backend)
    rng = np.random.default_rng(3)
    obs, noise = _obs(rng, 2), rng.standard_normal((2, 8, 32)).astype(np.float32)
    kw = {"inference_delay": 2, "prev_chunk_left_over": rng.standard_normal((5, 5)).astype(np.float32)} if rtc else {}
    ours = load_policy(smolvla_bundle, backend, rtc="guided" if rtc else None)
    eager = smolvla_eager
    eager._configure_rtc("guided" if rtc else "off", None)
    got, want = ours.predict_action_chunk(obs, noise=noise, **kw), eager.predict_action_chunk(obs, noise=noise, **kw)
    assert got.shape == (2, 8, 5)
    assert _err(ours, got, want) <= TOL
    if rtc:  # guidance must change the chunk
        assert np.abs(ours.predict_action_chunk(obs, noise=noise) - got).max() > 1e-3
    else:    # the state token is used
        moved = dict(obs, **{"observation.state": obs["observation.state"] + 2.0})
        assert np.abs(ours.predict_action_chunk(moved, noise=noise) - got).max() > 1e-3


def _chunk(plan, images, image_mask, ids, mask, state, noise, steps=10):
    """Our torch graphs with the Euler loop, for any language length."""
    import torch

    from lerobot_edge.kernels.flow_time import flow_time_embedding

    g = {p.name: p.module for p in plan.graphs}
    t = torch.as_tensor
    with torch.no_grad():
        tokens = torch.cat([g["vision"](t(im)) for im in images], dim=1)
        text = plan.graphs[1].module.core.vlm_with_expert.vlm.model.text_model
        embeds = text.embed_tokens(t(ids)) * np.float32(64 ** 0.5)                # as the runtime gathers them
        k, v = g["prefix"](tokens, t(image_mask), embeds, t(mask.astype(np.float32)), t(state))
        n = tokens.shape[1] // image_mask.shape[1]
        pmask = np.concatenate([np.repeat(image_mask, n, axis=1), mask, np.ones((len(ids), 1))], 1).astype(np.float32)
        x = t(noise)
        for i in range(steps):
            emb = flow_time_embedding(np.full(len(ids), 1 - i / steps, np.float32), 48, 4e-3, 4.0)
            x = x - g["denoise"](x, t(emb), k, v, t(pmask)) / steps
    return x.numpy()


def test_max_length_padding_equals_longest(smolvla_checkpoint, smolvla_vlm):
    """The bundle pads the prompt to tokenizer_max_length; LeRobot pads to the batch's longest prompt."""
    from lerobot_edge.checkpoint import load_checkpoint
    from lerobot_edge.policies import build_plan
    from lerobot_edge.runtime.policies.vla_inputs import Tokenizer

    plan = build_plan(load_checkpoint(smolvla_checkpoint))
    tok = Tokenizer(smolvla_vlm / "tokenizer.json", 16, 2)
    ids, mask = tok(["pick the red cube", "open the drawer"], 2, append_newline=True)
    longest = int(mask.sum(1).max())
    assert longest < 16
    rng = np.random.default_rng(0)
    images = [rng.uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32) for _ in range(2)]
    args = (images, np.array([[1, 1], [1, 0]], np.float32))
    state, noise = rng.standard_normal((2, 32)).astype(np.float32), rng.standard_normal((2, 8, 32)).astype(np.float32)
    full = _chunk(plan, *args, ids, mask, state, noise)
    short = _chunk(plan, *args, ids[:, :longest], mask[:, :longest], state, noise)
    np.testing.assert_allclose(full, short, atol=1e-5)


def test_select_action_queue_and_missing_camera(smolvla_bundle):
    from lerobot_edge import load_policy
    from lerobot_edge.errors import ObservationError

    policy = load_policy(smolvla_bundle, seed=0, n_action_steps=3)
    obs = _obs(np.random.default_rng(0), cameras=("observation.images.top",))   # wrist missing: masked
    actions = [policy.select_action(obs) for _ in range(4)]
    assert all(a.shape == (5,) for a in actions) and not np.allclose(actions[0], actions[3])
    with pytest.raises(ObservationError, match="noise"):
        policy.predict_action_chunk(obs, noise=np.zeros((1, 8, 5), np.float32))


def test_missing_vlm_config_says_how_to_provide_it(smolvla_checkpoint, tmp_path):
    from lerobot_edge import export
    from lerobot_edge.errors import CheckpointError

    with pytest.raises(CheckpointError, match="--vlm"):
        export(smolvla_checkpoint, tmp_path / "b", vlm=str(tmp_path / "nowhere"))
    moved = tmp_path / "ckpt"
    shutil.copytree(smolvla_checkpoint, moved)
    body = json.loads((moved / "config.json").read_text())
    body["vlm_model_name"] = str(tmp_path / "gone")
    (moved / "config.json").write_text(json.dumps(body))
    with pytest.raises(CheckpointError, match="vlm_model_name|--vlm"):
        export(moved, tmp_path / "b2")


def test_tied_embeddings_and_strict_keys(smolvla_vlm, tmp_path):
    from safetensors.numpy import load_file, save_file

    from lerobot_edge.checkpoint import load_checkpoint
    from lerobot_edge.errors import CheckpointError
    from lerobot_edge.policies import build_plan

    ck = write_smolvla_checkpoint(tmp_path / "tied", smolvla_vlm, tie_embeddings=True, num_vlm_layers=2)
    plan = build_plan(load_checkpoint(ck))   # embedding table from lm_head; 2 of the VLM's 4 layers
    assert plan.graphs[1].outputs[0].shape[0] == 2
    w = load_file(str(ck / "model.safetensors"))
    del w["model.vlm_with_expert.lm_expert.layers.1.self_attn.k_proj.weight"]
    w["model.extra.weight"] = np.zeros(3, np.float32)
    save_file(w, str(ck / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"(?s)missing keys.*layers.1.self_attn.k_proj.*unexpected.*model.extra"):
        build_plan(load_checkpoint(ck))


@pytest.mark.parametrize("hw", [(48, 64), (40, 40), (480, 640), (300, 17)])
def test_resize_with_top_left_padding_matches_torch(hw):
    import torch
    import torch.nn.functional as F

    from lerobot_edge.kernels.image import resize_with_pad

    img = np.random.default_rng(0).random((2, 3, *hw)).astype(np.float32)
    ratio = max(hw[1] / 64, hw[0] / 64)
    rh, rw = int(hw[0] / ratio), int(hw[1] / ratio)
    want = F.interpolate(torch.from_numpy(img), size=(rh, rw), mode="bilinear", align_corners=False)
    want = F.pad(want, (64 - rw, 0, 64 - rh, 0)).numpy()                 # SmolVLA: no clamp, pad left and top
    np.testing.assert_allclose(resize_with_pad(img, 64, center=False, clamp=False), want, atol=2e-6)


def test_full_size_dimensions_from_the_smolvlm2_config(tmp_path):
    """SmolVLM2-500M-Video-Instruct's config -> SmolVLA's published sizes (meta device: no weights)."""
    import torch

    from lerobot_edge.policies.smolvla.config import SmolVLAConfig, read_vlm_dims
    from lerobot_edge.policies.smolvla.model import SmolVLAWeights
    from lerobot_edge.testing.checkpoints.smolvla import FULL_VLM

    cfg = SmolVLAConfig(state_dim=6, action_dim=6, image_keys=("observation.images.top",),
                        vlm=read_vlm_dims(str(write_vlm_dir(tmp_path / "vlm", FULL_VLM))))
    cfg.check()
    assert (cfg.text.depth, cfg.expert.width, cfg.expert.mlp_dim, cfg.tokens_per_image) == (16, 720, 2048, 64)
    assert [cfg.is_cross(i) for i in range(4)] == [False, True, False, True]
    with torch.device("meta"):
        n = sum(p.numel() for p in SmolVLAWeights(cfg).parameters())
    n += 49_280 * 960   # the checkpoint's (unused) lm_head
    assert 445e6 < n < 455e6, n   # "~450 M parameters"


def test_control_loop_feeds_rtc_the_leftover_and_the_measured_delay(smolvla_bundle):
    """Async loop with RTC merging: each new chunk gets the unexecuted leftover and a latency-driven delay."""
    from lerobot_edge import load_policy
    from lerobot_edge.runtime.control import ControlLoop, SimRobot

    class TaskRobot(SimRobot):   # the sim robot has no task prompt; a VLA needs one
        def get_observation(self):
            return {**super().get_observation(), "task": "pick the red cube"}

    policy = load_policy(smolvla_bundle, rtc="guided")
    report = ControlLoop(policy, TaskRobot.from_policy(policy), 20, "async", merge="rtc").run(1.5)
    later = report["inferences"][1:]
    assert later and all(r["leftover"] > 0 and "inference_delay" in r for r in later)
    assert report["robot"]["actions_received"] >= 20


@pytest.mark.skipif(not os.environ.get("LEROBOT_EDGE_RTC_EXACT_BUNDLES"),
                    reason="an rtc_exact export takes about a minute here: set LEROBOT_EDGE_RTC_EXACT_BUNDLES=1")
def test_rtc_exact_bundle_matches_eager_and_differs_from_guided(smolvla_checkpoint, tmp_path):
    """rtc_exact=True adds `denoise_rtc` (the exact vector-Jacobian product through the expert, common/rtc_exact.py)."""
    from lerobot_edge import export, load_policy
    from lerobot_edge.checkpoint import load_checkpoint
    from lerobot_edge.policies import build_plan
    from lerobot_edge.exporters.torch_session import TorchSession
    from lerobot_edge.runtime.policies.flow import FlowMatchingEdgePolicy

    bundle = export(smolvla_checkpoint, tmp_path / "exact", rtc_exact=True)
    plan = build_plan(load_checkpoint(smolvla_checkpoint), rtc_exact=True)
    rng = np.random.default_rng(4)
    obs, noise = _obs(rng), rng.standard_normal((1, 8, 32)).astype(np.float32)
    kw = {"inference_delay": 2, "prev_chunk_left_over": rng.standard_normal((5, 5)).astype(np.float32)}
    eager = FlowMatchingEdgePolicy(load_policy(bundle).bundle, "torch",
                                   {g.name: TorchSession(g) for g in plan.graphs}, {"rtc": "exact"})
    want = eager.predict_action_chunk(obs, noise=noise, **kw)
    for backend in ("onnxruntime", "openvino"):
        exact = load_policy(bundle, backend, rtc="exact")
        got = exact.predict_action_chunk(obs, noise=noise, **kw)
        assert _err(exact, got, want) <= TOL
        guided = load_policy(bundle, backend, rtc="guided").predict_action_chunk(obs, noise=noise, **kw)
        assert np.abs(guided - got).max() > 1e-3
