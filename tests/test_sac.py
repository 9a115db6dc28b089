"""SAC end to end: 0.4 checkpoint (critic keys present) -> bundle -> torch-free runtime, against our PyTorch
actor with LeRobot's processor math (deterministic tanh(mean), injected noise, discrete gripper)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from lerobot_edge.testing.checkpoints.sac import LEROBOT_COMPILED, write_sac_checkpoint
from safetensors.numpy import load_file, save_file

from lerobot_edge import export, load_policy
from lerobot_edge.checkpoint import load_checkpoint
from lerobot_edge.errors import CheckpointError, ObservationError
from lerobot_edge.kernels.normalize import normalize, unnormalize
from lerobot_edge.policies import build_plan

CASES = {"state": dict(), "image_discrete": dict(cameras={"observation.image": (3, 64, 64)},
                                                 num_discrete_actions=3),
         "unshared": dict(cameras={"observation.image": (3, 64, 64)}, num_discrete_actions=2,
                          shared_encoder=False),
         # LeRobot's default use_torch_compile=True: critics saved as critic_*._orig_mod.*
         "compiled": dict(cameras={"observation.image": (3, 64, 64)}, num_discrete_actions=2,
                          shared_encoder=False, orig_mod=LEROBOT_COMPILED)}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, tmp_path_factory):
    ckpt = write_sac_checkpoint(tmp_path_factory.mktemp("sac") / request.param, seed=7, **CASES[request.param])
    bundle = export(ckpt, tmp_path_factory.mktemp("sacb") / request.param)
    return ckpt, bundle


def _obs(ckpt, rng, batch):
    out = {}
    for k, f in ckpt.input_features.items():
        out[k] = (rng.random((batch, *f.shape)) if f.type == "VISUAL"
                  else rng.normal(0, 1, (batch, *f.shape))).astype(np.float32)
    return out


def _torch(ckpt, obs):
    plan = build_plan(ckpt)
    g = plan.graphs[0]
    feed = [torch.from_numpy(normalize(obs[s.name], ckpt.norm_modes[s.name], ckpt.stats.get(s.name, {})))
            for s in g.inputs]
    with torch.no_grad():
        return [t.numpy() for t in g.module(*feed)]


def test_select_action_equals_pytorch(case):
    ckpt_dir, bundle = case
    ckpt = load_checkpoint(ckpt_dir)
    policy = load_policy(bundle)
    rng = np.random.default_rng(0)
    obs = _obs(ckpt, rng, 4)
    outs = _torch(ckpt, obs)
    mean, std = outs[0], outs[1]
    assert std.std() > 0 and mean.std() > 0.05           # weights matter
    unn = lambda y: unnormalize(y, ckpt.norm_modes["action"], ckpt.stats["action"])  # noqa: E731
    a = policy.select_action(obs)
    A = mean.shape[1]
    np.testing.assert_allclose(a[:, :A], unn(np.tanh(mean)), atol=1e-4)
    noise = rng.standard_normal(mean.shape).astype(np.float32)
    b = policy.select_action(obs, noise=noise)
    np.testing.assert_allclose(b[:, :A], unn(np.tanh(mean + np.sqrt(std) * noise)), atol=1e-4)
    assert not np.allclose(a, b)
    if len(outs) == 3:
        assert a.shape == (4, A + 1)
        np.testing.assert_array_equal(a[:, A], np.argmax(outs[2], -1))
    single = policy.select_action({k: v[0] for k, v in obs.items()})
    np.testing.assert_allclose(single, a[0], atol=1e-5)
    with pytest.raises(ObservationError):
        policy.select_action(obs, noise=noise[:, :1])
    np.testing.assert_allclose(policy.predict_action_chunk(obs)[:, 0], a, atol=1e-6)   # one-step chunk


def test_seeded_sampling_is_reproducible(case):
    _, bundle = case
    ckpt = load_checkpoint(case[0])
    obs = _obs(ckpt, np.random.default_rng(1), 2)
    a = [load_policy(bundle, seed=3).select_action(obs) for _ in range(2)]
    np.testing.assert_array_equal(a[0], a[1])
    assert not np.allclose(a[0], load_policy(bundle).select_action(obs))


def test_unexpected_and_missing_keys_are_named(tmp_path):
    d = write_sac_checkpoint(tmp_path / "c", seed=1)
    w = load_file(str(d / "model.safetensors"))
    w["actor.bogus.weight"] = np.zeros(2, np.float32)
    del w["actor.mean_layer.bias"]
    save_file(w, str(d / "model.safetensors"))
    with pytest.raises(CheckpointError, match="actor.bogus.weight") as e:
        build_plan(load_checkpoint(d))
    assert "actor.mean_layer.bias" in str(e.value)


def test_pretrained_vision_encoder_refused(tmp_path):
    d = write_sac_checkpoint(tmp_path / "c", seed=1)
    import json
    cfg = json.loads((d / "config.json").read_text())
    cfg["vision_encoder_name"] = "helper2424/resnet10"
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="vision_encoder_name"):
        build_plan(load_checkpoint(d))


# torch.compile'd modules anywhere: LeRobot's default (the critics), the whole policy, the actor or its encoder,
# the discrete critic (a LeRobot TODO), nested
PLACEMENTS = {"lerobot_default": LEROBOT_COMPILED, "whole_policy": ("",), "actor": ("actor",),
              "nested": ("", "actor", "actor.encoder", "critic_ensemble"),
              "discrete_critic": ("discrete_critic", "discrete_critic_target", "critic_target")}


@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
def test_orig_mod_at_any_placement_loads_the_same_weights(tmp_path, placement):
    kw = dict(cameras={"observation.image": (3, 48, 48)}, num_discrete_actions=2, shared_encoder=False, seed=5)
    plain = build_plan(load_checkpoint(write_sac_checkpoint(tmp_path / "plain", **kw)))
    d = write_sac_checkpoint(tmp_path / "compiled", orig_mod=PLACEMENTS[placement], **kw)
    assert any("_orig_mod" in k for k in load_file(str(d / "model.safetensors")))
    compiled = build_plan(load_checkpoint(d))
    want, got = plain.graphs[0].module.state_dict(), compiled.graphs[0].module.state_dict()
    assert sorted(want) == sorted(got)
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=0)


@pytest.mark.parametrize("stray", ["critic_ensemble._orig_mod.critics.0.bogus.weight",
                                   "critic_target._orig_mod.critics.1.net.net.0.weight_scale",
                                   "critic_ensemble._orig_mod.value_head.weight", "log_alpha_2", "temperature"])
def test_a_key_off_the_allow_list_is_refused_naming_it(tmp_path, stray):
    """The training-only keys are allow-listed by full name; a stray key beside them, compiled or not, is an
    error that names it as saved."""
    d = write_sac_checkpoint(tmp_path / "c", seed=1, orig_mod=LEROBOT_COMPILED)
    w = load_file(str(d / "model.safetensors"))
    build_plan(load_checkpoint(d))                                       # loads as LeRobot saved it
    w[stray] = np.zeros(2, np.float32)
    save_file(w, str(d / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1\): " + re.escape(stray) + "$"):
        build_plan(load_checkpoint(d))


def test_two_keys_naming_one_tensor_once_uncompiled_are_refused(tmp_path):
    d = write_sac_checkpoint(tmp_path / "c", seed=1)
    w = load_file(str(d / "model.safetensors"))
    w["actor._orig_mod.mean_layer.bias"] = w["actor.mean_layer.bias"] + 1
    save_file(w, str(d / "model.safetensors"))
    with pytest.raises(CheckpointError, match="actor._orig_mod.mean_layer.bias.*both name 'actor.mean_layer.bias'"):
        build_plan(load_checkpoint(d))
