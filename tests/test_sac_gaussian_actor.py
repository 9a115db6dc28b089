"""SAC's actor in LeRobot 0.6's layout (`gaussian_actor`: no critics, the separate critic encoder under
`discrete_critic.encoder`) -> bundle -> runtime, against our PyTorch actor; both generations through one plan."""

from __future__ import annotations

import json

import numpy as np
import pytest
from lerobot_edge.testing.checkpoints.sac import write_gaussian_actor_checkpoint
from test_sac import _obs, _torch

from lerobot_edge import available_policies, export, load_policy
from lerobot_edge.checkpoint import load_checkpoint
from lerobot_edge.kernels.normalize import unnormalize


@pytest.fixture(scope="module")
def unshared(tmp_path_factory):
    ckpt = write_gaussian_actor_checkpoint(tmp_path_factory.mktemp("ga") / "unshared", seed=9, env_dim=3,
                                           cameras={"observation.images.top": (3, 48, 48)}, num_discrete_actions=2,
                                           shared_encoder=False)
    return ckpt, export(ckpt, tmp_path_factory.mktemp("gab") / "unshared")


def test_gaussian_actor_equals_pytorch(unshared):
    ckpt_dir, bundle = unshared
    assert "gaussian_actor" in available_policies()
    ckpt = load_checkpoint(ckpt_dir)
    assert ckpt.policy_type == "gaussian_actor"
    assert json.loads((bundle / "manifest.json").read_text())["policy"]["type"] == "gaussian_actor"
    rng = np.random.default_rng(0)
    obs = _obs(ckpt, rng, 3)
    mean, std, q = _torch(ckpt, obs)
    assert mean.std() > 0.05 and q.std() > 0.05                                  # weights matter
    unn = lambda y: unnormalize(y, ckpt.norm_modes["action"], ckpt.stats["action"])  # noqa: E731
    policy = load_policy(bundle)
    a, A = policy.select_action(obs), mean.shape[1]
    np.testing.assert_allclose(a[:, :A], unn(np.tanh(mean)), atol=1e-4)
    np.testing.assert_array_equal(a[:, A], np.argmax(q, -1))                      # the critic's own encoder
    noise = rng.standard_normal(mean.shape).astype(np.float32)
    b = policy.select_action(obs, noise=noise)
    np.testing.assert_allclose(b[:, :A], unn(np.tanh(mean + np.sqrt(std) * noise)), atol=1e-4)


def test_shared_state_only(tmp_path):
    ckpt = write_gaussian_actor_checkpoint(tmp_path / "state", seed=4)
    bundle = export(ckpt, tmp_path / "b")
    obs = _obs(load_checkpoint(ckpt), np.random.default_rng(2), 2)
    assert load_policy(bundle, "openvino").select_action(obs).shape == (2, 3)
