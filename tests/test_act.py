"""ACT end to end: checkpoint -> bundle -> torch-free runtime, against our PyTorch module and LeRobot's
queue / temporal-ensembling semantics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lerobot_edge.testing.checkpoints.act import TINY_ACT, write_act_checkpoint
from safetensors.numpy import load_file, save_file

from lerobot_edge import export, load_policy
from lerobot_edge.checkpoint import load_checkpoint
from lerobot_edge.errors import CheckpointError, NonFiniteActionError, ObservationError
from lerobot_edge.kernels.normalize import normalize, unnormalize
from lerobot_edge.policies import build_plan


def observation(ckpt, rng, batch=None, uint8=True):
    """Random observation for every input feature of `ckpt` (uint8 HWC frames or float CHW)."""
    obs = {}
    for key, f in ckpt.input_features.items():
        lead = () if batch is None else (batch,)
        if f.type == "VISUAL":
            c, h, w = f.shape
            img = rng.integers(0, 256, (*lead, h, w, c), dtype=np.uint8)
            obs[key] = img if uint8 else np.moveaxis(img, -1, -3).astype(np.float32) / 255
        else:
            obs[key] = rng.normal(0, 1, (*lead, *f.shape)).astype(np.float32)
    return obs


def torch_chunk(ckpt, obs) -> np.ndarray:
    """Reference: LeRobot's processor math around our PyTorch module (float64-free, like LeRobot)."""
    plan = build_plan(ckpt)
    g = plan.graphs[0]
    feed = []
    for spec in g.inputs:
        x = np.asarray(obs[spec.name])
        if ckpt.input_features[spec.name].type == "VISUAL" and x.dtype == np.uint8:
            x = np.moveaxis(x, -1, -3).astype(np.float32) / 255
        x = x if x.ndim == len(spec.shape) else x[None]
        feed.append(torch.from_numpy(normalize(x, ckpt.norm_modes[spec.name], ckpt.stats.get(spec.name, {}))))
    with torch.no_grad():
        y = g.module(*feed).numpy()
    return unnormalize(y, ckpt.norm_modes["action"], ckpt.stats.get("action", {}))


@pytest.mark.parametrize("which", ["tiny", "multicam"])
def test_chunk_equals_pytorch(which, request):
    ckpt_dir = request.getfixturevalue(f"act_{which}_checkpoint")
    bundle = request.getfixturevalue(f"act_{which}_bundle")
    ckpt = load_checkpoint(ckpt_dir, policy_type="act")
    policy = load_policy(bundle)
    rng = np.random.default_rng(0)
    for batch, uint8 in ((None, True), (3, False)):
        obs = observation(ckpt, rng, batch, uint8)
        got = policy.predict_action_chunk(obs)
        want = torch_chunk(ckpt, obs)
        want = want[0] if batch is None else want
        assert got.shape == want.shape and got.dtype == np.float32
        scale = ckpt.stats["action"]["std"] if ckpt.norm_modes["action"] == "MEAN_STD" else \
            (ckpt.stats["action"]["max"] - ckpt.stats["action"]["min"]) / 2
        assert np.abs((got - want) / scale).max() <= 1e-4
        assert got.std() > 0.1  # not a degenerate chunk


def test_select_action_pops_the_queue_in_order(act_multicam_checkpoint, act_multicam_bundle):
    policy = load_policy(act_multicam_bundle)
    ckpt = load_checkpoint(act_multicam_checkpoint)
    n = policy.n_action_steps
    assert n == 4
    rng = np.random.default_rng(1)
    obs = [observation(ckpt, rng, 2) for _ in range(2 * n + 1)]
    actions = [policy.select_action(o) for o in obs]
    for start in (0, n, 2 * n):  # a new chunk from the observation at each refill
        chunk = policy.predict_action_chunk(obs[start])
        np.testing.assert_allclose(np.stack(actions[start:start + n], 1), chunk[:, : len(actions[start:start + n])],
                                   atol=1e-6)
    assert set(policy.timings) == {"preprocess", "act", "sampler", "postprocess", "total"}
    policy.reset()
    np.testing.assert_allclose(policy.select_action(obs[3]), policy.predict_action_chunk(obs[3])[:, 0], atol=1e-6)


def naive_ensemble(chunks: list[np.ndarray], coeff: float) -> list[np.ndarray]:
    """Step t averages chunk_k[t - k] over every chunk k <= t that reaches t, weights exp(-coeff * age)."""
    out = []
    T = chunks[0].shape[1]
    for t in range(len(chunks)):
        preds = [chunks[k][:, t - k] for k in range(max(0, t - T + 1), t + 1)]
        w = np.exp(-coeff * np.arange(len(preds)))
        out.append(sum(wi * p for wi, p in zip(w, preds)) / w.sum())
    return out


def test_temporal_ensembling_matches_the_weighted_mean(act_tiny_checkpoint, tmp_path):
    coeff = 0.3
    policy = load_policy(export(act_tiny_checkpoint, tmp_path / "b", policy_type="act"),
                         temporal_ensemble_coeff=coeff)
    ckpt = load_checkpoint(act_tiny_checkpoint, policy_type="act")
    rng = np.random.default_rng(2)
    obs = [observation(ckpt, rng, 2) for _ in range(14)]  # more steps than the chunk (10)
    mean, std = ckpt.stats["action"]["mean"], ckpt.stats["action"]["std"]
    chunks = [(policy.predict_action_chunk(o) - mean) / std for o in obs]  # ensembling runs normalized
    got = [policy.select_action(o) for o in obs]
    want = [w * std + mean for w in naive_ensemble(chunks, coeff)]
    np.testing.assert_allclose(np.stack(got), np.stack(want), atol=2e-5)


@pytest.mark.parametrize("mutate,match", [
    (lambda o: o.pop("observation.state"), "missing observation 'observation.state'"),
    (lambda o: o.update({"observation.state": np.zeros(7)}), "observation.state: expected shape"),
    (lambda o: o.update({"observation.images.top": np.zeros((64, 48, 3), np.uint8)}), "HWC RGB"),
    (lambda o: o.update({"observation.images.top": np.zeros((48, 64, 3), np.uint16)}), "uint8 HWC"),
    (lambda o: o.update({"observation.images.top": np.zeros((48, 64, 3), np.float32)}), "CHW"),
    (lambda o: o.update({"observation.images.side": np.zeros((48, 64, 3), np.uint8)}), "no such camera"),
    (lambda o: o.update({"observation.state": np.full(6, np.nan)}), "NaN"),
    (lambda o: o.update({"observation.state": np.zeros((2, 6))}), "batch size"),
    (lambda o: o.update({"observation.state": np.array(["a"] * 6)}), "numeric"),
])
def test_bad_observations_are_named(act_tiny_bundle, mutate, match):
    policy = load_policy(act_tiny_bundle)
    obs = {"observation.state": np.zeros(6, np.float32),
           "observation.images.top": np.zeros((48, 64, 3), np.uint8), "timestamp": 0.1}
    policy.select_action(dict(obs))  # extra non-feature keys are ignored
    queued = len(policy.queue)
    mutate(obs)
    if "batch size" in match:
        obs["observation.images.top"] = np.zeros((3, 48, 64, 3), np.uint8)
    with pytest.raises(ObservationError, match=match):
        policy.select_action(obs)
    assert len(policy.queue) == queued  # a rejected call leaves the queue as it was


def test_non_finite_engine_output_is_never_returned(act_tiny_bundle):
    policy = load_policy(act_tiny_bundle)
    with pytest.raises(NonFiniteActionError):
        policy.postprocess(np.full((1, 10, 4), np.inf, np.float32))


def test_weights_that_do_not_match_the_config_are_named(tmp_path):
    d = write_act_checkpoint(tmp_path / "c", **TINY_ACT)
    w = load_file(str(d / "model.safetensors"))
    w["model.extra_head.weight"] = np.zeros(3, np.float32)
    del w["model.action_head.bias"]
    save_file(w, str(d / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): model.action_head.bias") as e:
        build_plan(load_checkpoint(d, policy_type="act"))
    assert "model.extra_head.weight" in str(e.value)


def test_unknown_policy_type(tmp_path):
    d = write_act_checkpoint(tmp_path / "c", **TINY_ACT)
    with pytest.raises(CheckpointError, match="policy type 'xvla' is not supported; supported: act"):
        export(d, tmp_path / "b", policy_type="xvla")


def test_legacy_checkpoint_exports_and_matches(tmp_path):
    d = write_act_checkpoint(tmp_path / "c", layout="legacy", norm_map={"VISUAL": "MEAN_STD", "STATE": "MIN_MAX",
                                                                      "ACTION": "MIN_MAX"}, **TINY_ACT)
    ckpt = load_checkpoint(d, policy_type="act")
    policy = load_policy(export(d, tmp_path / "b", policy_type="act"))
    obs = observation(ckpt, np.random.default_rng(3))
    want = torch_chunk(ckpt, obs)[0]
    # legacy MIN_MAX divides by (max - min + eps): our reference applies the new formula, same to ~1e-7
    np.testing.assert_allclose(policy.predict_action_chunk(obs), want, atol=1e-4)
