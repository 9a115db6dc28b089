"""Parity with LeRobot 0.4.4 itself: checkpoints written by LeRobot, reference actions computed by LeRobot's
preprocessor -> ACTPolicy -> postprocessor (scripts/lerobot_reference.py, run by `make parity-ref` in its own
venv). Our export + runtime must reproduce them to <= 1e-4 in normalized units."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import reference_dir

from lerobot_edge import export, load_policy
from lerobot_edge.checkpoint import load_checkpoint
from lerobot_edge.kernels.normalize import action_scale

REF = reference_dir()
CASES = sorted(p.name for p in REF.iterdir() if (p / "reference.npz").is_file()) if REF and REF.is_dir() else []
pytestmark = [pytest.mark.parity, pytest.mark.skipif(
    not CASES, reason="no LeRobot reference outputs: run `make parity-ref` (builds the LeRobot 0.4.4 venv) or set "
                      "LEROBOT_EDGE_REFERENCE_DIR")]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    cache = {}

    def get(case: str, target: str):
        if (case, target) not in cache:
            ckpt = REF / case / "checkpoint"
            bundle = export(ckpt, tmp_path_factory.mktemp(case) / target, target, policy_type="act")
            cache[case, target] = (load_checkpoint(ckpt, policy_type="act"), bundle)
        return cache[case, target]
    return get


def _observations(ref, step: int) -> dict[str, np.ndarray]:
    prefix = f"obs.{step}."
    return {k[len(prefix):]: ref[k] for k in ref.files if k.startswith(prefix)}


def _normalized_error(ckpt, got, want) -> float:
    scale = action_scale(ckpt.norm_modes["action"], ckpt.stats.get("action", {}))
    return float(np.abs((got - want) / scale).max())


@pytest.mark.parametrize("target", ["onnx", "openvino"])
@pytest.mark.parametrize("case", CASES)
def test_chunk_and_select_action_equal_lerobot(case, target, exported):
    if target == "openvino":
        pytest.importorskip("openvino", reason="pip install 'lerobot-edge[openvino]'")
    ckpt, bundle = exported(case, target)
    ref = np.load(REF / case / "reference.npz")
    meta = json.loads((REF / case / "meta.json").read_text()) if (REF / case / "meta.json").is_file() else {}
    policy = load_policy(bundle)
    chunk = policy.predict_action_chunk(_observations(ref, 0))
    err_chunk = _normalized_error(ckpt, chunk, ref["chunk"])
    policy.reset()
    actions = np.stack([policy.select_action(_observations(ref, i)) for i in range(int(ref["n_steps"]))])
    err_steps = _normalized_error(ckpt, actions, ref["actions"])
    print(f"{case}/{target} (lerobot {meta.get('lerobot_version', '?')}): chunk {err_chunk:.2e}, select_action {err_steps:.2e}")
    assert chunk.shape == ref["chunk"].shape and actions.shape == ref["actions"].shape
    assert err_chunk <= 1e-4
    assert err_steps <= 1e-4
