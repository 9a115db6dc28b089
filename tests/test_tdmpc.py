"""TDMPC end to end: checkpoint (target keys present) -> bundle -> torch-free runtime, graphs against our
PyTorch TOLD; planner behaviour (shapes, queue, repeats, warm start, seeded reproducibility)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lerobot_edge.testing.checkpoints.tdmpc import write_tdmpc_checkpoint

from lerobot_edge import export, load_policy
from lerobot_edge.checkpoint import load_checkpoint
from lerobot_edge.policies import build_plan

CASES = {"mpc_state": dict(), "pi_image": dict(camera=(3, 40, 40), env_dim=3, use_mpc=False)}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, tmp_path_factory):
    ckpt = write_tdmpc_checkpoint(tmp_path_factory.mktemp("tdmpc") / request.param, seed=5, **CASES[request.param])
    return request.param, ckpt, export(ckpt, tmp_path_factory.mktemp("tdmpcb") / request.param)


def _obs(ckpt, rng, batch):
    return {k: (rng.random((batch, *f.shape)) if f.type == "VISUAL" else rng.normal(0, 1, (batch, *f.shape)))
            .astype(np.float32) for k, f in ckpt.input_features.items()}


def test_shapes_queue_and_seed(case):
    name, ckpt_dir, bundle = case
    ckpt = load_checkpoint(ckpt_dir)
    obs = _obs(ckpt, np.random.default_rng(0), 2)
    p = load_policy(bundle, seed=1)
    H = ckpt.config["horizon"] if ckpt.config["use_mpc"] else 1
    chunk = p.predict_action_chunk(obs)
    assert chunk.shape == (H, 2, 2)
    assert p.predict_action_chunk({k: v[0] for k, v in obs.items()}).shape == (H, 2)
    p.reset()
    a0, a1 = p.select_action(obs), p.select_action(obs)
    assert a0.shape == (2, 2)
    np.testing.assert_array_equal(a0, a1)                 # n_action_repeats=2: the first action twice
    assert p.graph_calls["encoder"] == 0                  # second call served from the queue
    q = [load_policy(bundle, seed=7).predict_action_chunk(obs) for _ in range(2)]
    np.testing.assert_array_equal(q[0], q[1])
    if name == "mpc_state":
        assert p.graph_calls["value"] == 0
        p.reset()
        p.select_action(obs)
        assert p.graph_calls["value"] == ckpt.config["cem_iterations"]   # one engine call per iteration
        samples = ckpt.config["n_gaussian_samples"] + ckpt.config["n_pi_samples"]
        assert p.graph_rows["value"] == ckpt.config["cem_iterations"] * samples * 2   # batch rows: FLOPs scale
        assert p.graph_calls["pi_rollout"] == 1


def test_pi_mode_equals_pytorch(case):
    name, ckpt_dir, bundle = case
    if name != "pi_image":
        pytest.skip("pi mode only")
    from lerobot_edge.kernels.normalize import normalize, unnormalize
    ckpt = load_checkpoint(ckpt_dir)
    plan = build_plan(ckpt)
    obs = _obs(ckpt, np.random.default_rng(2), 3)
    enc, pi = plan.graphs[0], plan.graphs[1]
    feed = [torch.from_numpy(normalize(obs[s.name], ckpt.norm_modes[s.name], ckpt.stats.get(s.name, {})))
            for s in enc.inputs]
    with torch.no_grad():
        want = np.clip(pi.module(enc.module(*feed)).numpy(), -1, 1)
    want = unnormalize(want, ckpt.norm_modes["action"], ckpt.stats["action"])
    got = load_policy(bundle).select_action(obs)
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert want.std() > 0.05
