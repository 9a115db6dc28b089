"""Our numpy DDPM/DDIM against diffusers itself, step by step, with the same injected per-step noise."""

from __future__ import annotations

import numpy as np
import pytest

from lerobot_edge.kernels.schedulers import Scheduler, SchedulerConfig

diffusers = pytest.importorskip("diffusers", reason="scheduler parity needs diffusers (a test-only dependency)")
torch = pytest.importorskip("torch")


def _reference(cfg: SchedulerConfig):
    cls = diffusers.DDPMScheduler if cfg.kind == "DDPM" else diffusers.DDIMScheduler
    return cls(num_train_timesteps=cfg.num_train_timesteps, beta_start=cfg.beta_start, beta_end=cfg.beta_end,
               beta_schedule=cfg.beta_schedule, clip_sample=cfg.clip_sample, clip_sample_range=cfg.clip_sample_range,
               prediction_type=cfg.prediction_type)


@pytest.mark.parametrize("kind,steps", [("DDPM", 100), ("DDPM", 10), ("DDIM", 10), ("DDIM", 25)])
@pytest.mark.parametrize("schedule", ["squaredcos_cap_v2", "linear", "scaled_linear"])
@pytest.mark.parametrize("prediction", ["epsilon", "sample"])
@pytest.mark.parametrize("clip", [True, False])
def test_step_by_step_equals_diffusers(kind, steps, schedule, prediction, clip, monkeypatch):
    cfg = SchedulerConfig(kind, 100, schedule, 1e-4, 0.02, prediction, clip, 1.0)
    ours, ref = Scheduler(cfg), _reference(cfg)
    ours.set_timesteps(steps)
    ref.set_timesteps(steps)
    np.testing.assert_array_equal(ours.timesteps, ref.timesteps.numpy())
    rng = np.random.default_rng(0)
    x_ref = torch.from_numpy(rng.standard_normal((2, 16, 3)).astype(np.float32))
    import diffusers.schedulers.scheduling_ddpm as ddpm

    for t in ours.timesteps:
        out = rng.standard_normal(x_ref.shape).astype(np.float32) * 0.7
        noise = rng.standard_normal(x_ref.shape).astype(np.float32)
        # diffusers draws DDPM noise itself: hand it ours
        monkeypatch.setattr(ddpm, "randn_tensor", lambda *a, _n=noise, **k: torch.from_numpy(_n.copy()))
        # step by step: both start each step from the reference's sample, so rounding does not accumulate
        sample = ours.step(out, int(t), x_ref.numpy(), noise)
        x_ref = ref.step(torch.from_numpy(out), int(t), x_ref).prev_sample
        want = x_ref.numpy()  # unclipped runs grow large: 1e-5 relative to the magnitude
        assert (np.abs(sample - want) / np.maximum(1.0, np.abs(want))).max() <= 1e-5, f"t={t}"
