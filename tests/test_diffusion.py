"""Diffusion Policy: exported encoder + denoiser with the DDPM/DDIM loop in numpy. Parity with LeRobot 0.4.4's
DiffusionPolicy (its processors included) over several chunks with shared noise; runtime behaviour on a tiny
checkpoint written without LeRobot."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import reference_dir
import tiny_zoo

from lerobot_edge import export, load_policy
from lerobot_edge.checkpoint import load_checkpoint
from lerobot_edge.errors import ObservationError
from lerobot_edge.kernels.normalize import action_scale

REF = reference_dir()
DREF = REF / "diffusion" if REF else None
CASES = sorted(p.name for p in DREF.iterdir() if (p / "reference.npz").is_file()) if DREF and DREF.is_dir() else []


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(checkpoint, bundle) from tests/tiny_zoo.py: exported once per run, shared with the hostile suites."""
    bundle = tiny_zoo.build("diffusion", tmp_path_factory)
    return bundle.parent / "ckpt", bundle


class _RecordedNoise:
    """Stands in for the policy's numpy Generator: LeRobot's recorded DDPM per-step draws, in draw order."""

    def __init__(self, draws: list[np.ndarray]):
        self.draws, self.used = draws, 0

    def standard_normal(self, shape, dtype=None) -> np.ndarray:
        d = self.draws[self.used]
        assert d.shape == tuple(shape), (d.shape, shape)
        self.used += 1
        return d


def _obs(rng, batch=None):
    lead = () if batch is None else (batch,)
    return {"observation.state": rng.normal(size=(*lead, 3)).astype(np.float32),
            "observation.image": rng.integers(0, 256, (*lead, 32, 32, 3), dtype=np.uint8)}


@pytest.mark.parity
@pytest.mark.skipif(not CASES, reason="no LeRobot diffusion references: run `make parity-ref`")
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("case", CASES)
def test_select_action_equals_lerobot(case, backend, tmp_path_factory):
    if backend == "openvino":
        pytest.importorskip("openvino", reason="pip install 'lerobot-edge[openvino]'")
    ckpt_dir = DREF / case / "checkpoint"
    ckpt = load_checkpoint(ckpt_dir)
    bundle = export(ckpt_dir, tmp_path_factory.mktemp(case) / "b", "openvino" if backend == "openvino" else "onnx")
    ref = np.load(DREF / case / "reference.npz")
    policy = load_policy(bundle)
    policy.rng = recorded = _RecordedNoise([ref[f"step_noise.{k}"] for k in range(
        sum(f.startswith("step_noise.") for f in ref.files))])
    actions = []
    for i in range(int(ref["n_steps"])):
        obs = {k[len(f"obs.{i}."):]: ref[k] for k in ref.files if k.startswith(f"obs.{i}.")}
        actions.append(policy.select_action(obs, noise=ref[f"noise.{i}"]))
    scale = action_scale(ckpt.norm_modes["action"], ckpt.stats.get("action", {}))
    err = float(np.abs((np.stack(actions) - ref["actions"]) / scale).max())
    assert recorded.used == len(recorded.draws)  # DDPM: every per-step draw LeRobot made, none more
    print(f"diffusion {case}/{backend}: select_action over {len(actions)} steps, max normalized error {err:.2e}")
    assert err <= 1e-4


def test_history_queue_and_noise(tiny):
    _, bundle = tiny
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["noise_shape"] == ["batch", 8, 2] and [g["name"] for g in m["graphs"]] == ["encoder", "denoise"]
    policy = load_policy(bundle)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((8, 2)).astype(np.float32)
    first = _obs(rng)
    a0 = policy.select_action(first, noise=noise)
    assert policy.timings["encoder"] > 0 and policy.timings["denoise"] > 0 and len(policy.queue) == 3
    for _ in range(3):  # the rest of the chunk comes from the queue, no engine call
        policy.select_action(_obs(rng), noise=noise)
        assert policy.timings["denoise"] == 0
    # the same first observation with the same noise gives the same chunk: history filled with copies
    chunk = load_policy(bundle).predict_action_chunk(first, noise=noise)
    assert chunk.shape == (4, 2)
    np.testing.assert_allclose(chunk[0], a0, atol=1e-6)
    with pytest.raises(ObservationError, match="noise: expected shape"):
        policy.select_action(_obs(rng), noise=np.zeros((7, 2), np.float32))


def test_seeded_sampling_and_step_override(tiny):
    _, bundle = tiny
    rng = np.random.default_rng(1)
    obs = _obs(rng, batch=2)
    a = load_policy(bundle, seed=3).predict_action_chunk(obs)
    b = load_policy(bundle, seed=3).predict_action_chunk(obs)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, 4, 2)
    with pytest.warns(UserWarning, match="num_inference_steps 2"):
        fewer = load_policy(bundle, seed=3, num_inference_steps=2)
    assert len(fewer.scheduler.timesteps) == 2
