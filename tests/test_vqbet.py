"""VQ-BeT end to end: checkpoint (training-only tensors present) -> bundle -> torch-free runtime, against our
PyTorch modules with an independent torch sampler; history, queue, seeds, greedy mode, errors, sampler
statistics. Parity with LeRobot itself: test_parity_vqbet.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from lerobot_edge.testing.checkpoints.vqbet import write_vqbet_checkpoint

from lerobot_edge import export, load_policy
from lerobot_edge.checkpoint import load_checkpoint
from lerobot_edge.errors import CheckpointError, ObservationError
from lerobot_edge.kernels.normalize import normalize, unnormalize
from lerobot_edge.policies import build_plan
from lerobot_edge.runtime.policies.vqbet import inverse_cdf, softmax

CASES = {"joint": dict(image_shape=(3, 72, 72), crop_shape=[64, 64]),
         "seq": dict(image_shape=(3, 64, 64), crop_shape=None, camera="observation.images.top",
                     sequentially_select=True, use_group_norm=False, n_obs_steps=2, action_chunk_size=3,
                     bet_softmax_temperature=0.5)}


# the sequential case (a second resnet export, ~20 s on a loaded 2-core machine) runs outside `-m "not slow"`
@pytest.fixture(scope="module", params=["joint", pytest.param("seq", marks=pytest.mark.slow)])
def case(request, tmp_path_factory):
    ckpt = write_vqbet_checkpoint(tmp_path_factory.mktemp("vqbet") / request.param, seed=11, **CASES[request.param])
    return load_checkpoint(ckpt), export(ckpt, tmp_path_factory.mktemp("vqbetb") / request.param)


def _obs(ckpt, rng, batch):
    return {k: (rng.random((batch, *f.shape)) if f.type == "VISUAL" else rng.normal(0, 1, (batch, *f.shape)))
            .astype(np.float32) for k, f in ckpt.input_features.items()}


def _torch_chunk(ckpt, plan, obs, u: torch.Tensor | None) -> np.ndarray:
    """The first chunk (history of copies) with our torch graphs and a torch sampler written apart from the
    runtime's: softmax at the temperature, searchsorted on the CDF (argmax when u is None)."""
    policy, decode = plan.graphs[0].module, plan.graphs[1].module
    cfg = policy.policy.vqbet.cfg
    feed = [torch.from_numpy(normalize(obs[s.name], ckpt.norm_modes[s.name], ckpt.stats.get(s.name, {})))
            .unsqueeze(1).expand(-1, cfg.n_obs_steps, *obs[s.name].shape[1:]) for s in plan.graphs[0].inputs]

    def pick(logits, v):
        if v is None:
            return logits.argmax(-1)
        cdf = torch.softmax(logits.double() / cfg.bet_softmax_temperature, -1).cumsum(-1)
        return torch.searchsorted(cdf, (v * cdf[..., -1]).unsqueeze(-1), right=True).squeeze(-1)

    with torch.no_grad():
        *logits, offsets = policy(*feed)
        if cfg.sequentially_select:
            primary = pick(logits[0], None if u is None else u[:, 0])
            secondary = pick(logits[1][torch.arange(len(primary)), primary], None if u is None else u[:, 1])
            codes = torch.stack([primary, secondary], 1)
        else:
            codes = pick(logits[0], u)
        decoded = decode(torch.nn.functional.one_hot(codes, cfg.vqvae_n_embed).float())
        b = torch.arange(len(codes))[:, None]
        chunk = decoded + offsets[b, torch.arange(2)[None], codes].sum(1)
    return unnormalize(chunk.numpy(), ckpt.norm_modes["action"], ckpt.stats["action"])


def test_chunk_equals_pytorch(case):
    ckpt, bundle = case
    rng = np.random.default_rng(0)
    obs, u = _obs(ckpt, rng, 3), rng.random((3, 2))
    p, plan = load_policy(bundle), build_plan(ckpt)
    scale = (ckpt.stats["action"]["max"] - ckpt.stats["action"]["min"]) / 2      # MIN_MAX: normalized units
    got = p.predict_action_chunk(obs, noise=u)
    assert np.abs((got - _torch_chunk(ckpt, plan, obs, torch.from_numpy(u))) / scale).max() <= 1e-4
    p.reset()
    p.sampling = "greedy"
    assert np.abs((p.predict_action_chunk(obs) - _torch_chunk(ckpt, plan, obs, None)) / scale).max() <= 1e-4
    p.sampling = "sample"
    chunks = {p.predict_action_chunk(obs, noise=rng.random((3, 2))).tobytes() for _ in range(8)}
    assert len(chunks) > 1                                                      # the draws change the actions
    ov = load_policy(bundle, "openvino").predict_action_chunk(obs, noise=u)
    assert np.abs((ov - got) / scale).max() <= 1e-4


def test_history_queue_and_seed(case):
    ckpt, bundle = case
    rng = np.random.default_rng(1)
    steps = [_obs(ckpt, rng, 2) for _ in range(8)]
    p = load_policy(bundle, seed=3)
    W, S = p.chunk_size, p.n_obs_steps
    u = np.full((2, 2), 0.37)
    acts = []
    for i, o in enumerate(steps[:W + 1]):
        acts.append(p.select_action(o, noise=u))
        assert p.graph_calls["policy"] == (1 if i % W == 0 else 0)             # one chunk per W steps
    q = load_policy(bundle)
    np.testing.assert_allclose(np.stack(acts[:W], 1), q.predict_action_chunk(steps[0], noise=u), atol=1e-6)
    q.reset()
    for o in steps[:W]:                                                         # same history as p's at step W
        q._push(q.preprocess(o)[0])
    assert len(q.history[ckpt.image_keys[0]]) == S
    np.testing.assert_allclose(acts[W], q.predict_action_chunk(steps[W], noise=u)[:, 0], atol=1e-6)
    seeded = [load_policy(bundle, seed=7).predict_action_chunk({k: v[0] for k, v in steps[0].items()})
              for _ in range(2)]
    np.testing.assert_array_equal(seeded[0], seeded[1])
    assert seeded[0].shape == (W, ckpt.action_feature.shape[0])


def test_bad_inputs(case, tmp_path):
    ckpt, bundle = case
    p = load_policy(bundle)
    obs = _obs(ckpt, np.random.default_rng(2), 2)
    for bad in (np.zeros((2, 3)), np.full((2, 2), 1.0), -np.ones(2)):
        with pytest.raises(ObservationError, match="noise"):
            p.predict_action_chunk(obs, noise=bad)
    with pytest.raises(ValueError, match="sampling"):
        p.sampling = "argmax"
    with pytest.raises(ValueError, match="n_action_steps"):
        load_policy(bundle, n_action_steps=2)
    conf = json.loads((ckpt.path / "config.json").read_text())
    conf["input_features"]["observation.environment_state"] = {"type": "ENV", "shape": [3]}
    d = tmp_path / "extra"
    d.mkdir()
    for f in ckpt.path.iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    (d / "config.json").write_text(json.dumps(conf))
    with pytest.raises(CheckpointError, match="observation.state' and one camera"):
        build_plan(load_checkpoint(d))


def test_undiscretized_checkpoint_warns(tmp_path):
    ckpt = write_vqbet_checkpoint(tmp_path / "raw", discretized=False, image_shape=(3, 64, 64), crop_shape=None)
    with pytest.warns(UserWarning, match="not discretized"):
        build_plan(load_checkpoint(ckpt))


def test_inverse_cdf_draws_follow_the_softmax():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 1, (2, 6))
    probs = softmax(logits, 0.5)
    n = 40_000
    codes = inverse_cdf(np.repeat(probs[:, None], n, 1), rng.random((2, n)))   # (2, n)
    freq = np.stack([np.bincount(c, minlength=6) / n for c in codes])
    assert np.abs(freq - probs).max() < 4 * np.sqrt(0.25 / n)                  # 4 sigma of a Bernoulli mean
    assert (inverse_cdf(probs, np.zeros(2)) == (probs > 0).argmax(-1)).all()
    assert (inverse_cdf(probs, np.full(2, np.nextafter(1, 0))) == 5).all()


def test_batch_change_is_refused_until_reset(case):
    ckpt, bundle = case
    p = load_policy(bundle, seed=0)
    one, two = _obs(ckpt, np.random.default_rng(4), 1), _obs(ckpt, np.random.default_rng(5), 2)
    p.select_action(one)
    with pytest.raises(ObservationError, match="batch size 2 differs"):
        p.select_action(two)
    assert len(p.queue) == p.chunk_size - 1                                     # nothing changed
    p.reset()
    assert p.select_action(two).shape[0] == 2
