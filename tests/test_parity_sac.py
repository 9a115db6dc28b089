"""SAC parity against LeRobot 0.4.4 (references from `make parity-ref-more`; skipped with a reason when absent),
on checkpoints LeRobot saved with its default config (torch.compile'd critics) as well as smaller ones.

Networks (mean, std, discrete Q) on the same observations <= 1e-4 in normalized units; select_action equal in
the deterministic mode (tanh(mean)) and, with LeRobot's own rsample draws tapped and injected here, in the
stochastic mode.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import reference_dir

from lerobot_edge import export, load_policy
from lerobot_edge.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
# sac_default_*: LeRobot's default config (torch.compile'd critics saved as critic_*._orig_mod.*, 256-wide nets);
# the others keep the defaults but their sizes (compile on too), sac_state_eager turns compile off
CASES = ("sac_default_state", "sac_default_image", "sac_state", "sac_image_gripper", "sac_unshared",
         "sac_state_eager")


def more_reference_dir() -> Path | None:
    return reference_dir("more-current", "LEROBOT_EDGE_REFERENCE_MORE_DIR")


def _case_dir(name: str) -> Path:
    root = more_reference_dir()
    d = root / "sac" / name if root else None
    if d is None or not (d / "reference.npz").is_file():
        pytest.skip("no LeRobot SAC reference: run `make parity-ref-more` (needs the LeRobot 0.4.4 venv)")
    return d


def _scale(ckpt) -> np.ndarray:
    """Per-dimension action scale for normalized-unit errors (std for MEAN_STD, half range for MIN_MAX)."""
    st, mode = ckpt.stats["action"], ckpt.norm_modes["action"]
    return np.asarray(st["std"] if mode == "MEAN_STD" else (st["max"] - st["min"]) / 2 if mode == "MIN_MAX" else 1.0)


@pytest.fixture(scope="module", params=CASES)
def case(request, tmp_path_factory):
    d = _case_dir(request.param)
    bundle = export(d / "checkpoint", tmp_path_factory.mktemp("sacpar") / request.param)
    return d, load_checkpoint(d / "checkpoint"), bundle, dict(np.load(d / "reference.npz"))


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_sac_matches_lerobot(case, backend):
    d, ckpt, bundle, ref = case
    pytest.importorskip(backend)
    policy = load_policy(bundle, backend)
    if backend == "openvino":       # an fp32 bundle tells OpenVINO f32 (it would run bf16 on this CPU otherwise)
        assert policy.sessions["sac_actor"].precision_hint == "f32"
    errors = check_actor(policy, ckpt, ref)
    print(f"{d.name}/{backend}: " + ", ".join(f"{k} {v:.2e}" for k, v in errors.items()))


def check_actor(policy, ckpt, ref: dict) -> dict[str, float]:
    """The actor graph (mean, std, discrete Q) and select_action (tanh(mean); sampled with LeRobot's tapped
    draw) against a LeRobot reference, ≤ 1e-4 (actions in normalized units). Returns the max abs errors."""
    obs = {k[len("obs."):]: v for k, v in ref.items() if k.startswith("obs.")}
    feed, _ = policy.preprocess(obs)
    out = policy.sessions["sac_actor"].run(feed)
    A, scale = ref["mean"].shape[1], _scale(ckpt)
    det = policy.select_action(obs)
    sampled = policy.select_action(obs, noise=ref["noise"])
    errors = {"mean": np.abs(out["mean"] - ref["mean"]).max(), "std": np.abs(out["std"] - ref["std"]).max(),
              "action_mean": np.abs((det[:, :A] - ref["action_mean"]) / scale).max(),
              "action_sampled": np.abs((sampled[:, :A] - ref["action_sampled"]) / scale).max()}
    if "discrete_q" in ref:
        errors["discrete_q"] = np.abs(out["discrete_q"] - ref["discrete_q"]).max()
        np.testing.assert_array_equal(det[:, A], ref["discrete_action"])
    for name, err in errors.items():
        assert err <= 1e-4, (name, err)
    return {k: float(v) for k, v in errors.items()}
