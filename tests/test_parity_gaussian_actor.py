"""SAC's actor as LeRobot 0.6.1 saves it (`gaussian_actor`) against LeRobot 0.6.1 itself (references from
`make parity-ref-gaussian-actor`, run in the 0.6 venv; skipped with a reason when absent). The same checks as
the 0.4.4 `sac` parity: networks (mean, std, discrete Q) <= 1e-4, select_action equal in the deterministic
mode (tanh(mean)) and, with LeRobot's own rsample draws tapped and injected here, in the stochastic mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import reference_dir
from test_parity_sac import check_actor

from lerobot_edge import export, load_policy
from lerobot_edge.checkpoint import load_checkpoint

pytestmark = pytest.mark.parity
REPO = Path(__file__).resolve().parents[1]
CASES = ("ga_image_gripper", "ga_unshared", "ga_state")


def reference_dir_06() -> Path | None:
    return reference_dir("gaussian-actor-current", "LEROBOT_EDGE_REFERENCE_GA_DIR")


@pytest.fixture(scope="module", params=CASES)
def case(request, tmp_path_factory):
    root = reference_dir_06()
    d = root / request.param if root else None
    if d is None or not (d / "reference.npz").is_file():
        pytest.skip("no LeRobot 0.6.1 gaussian_actor reference: run `make parity-ref-gaussian-actor` "
                    "(needs the LeRobot 0.6 venv)")
    ckpt = load_checkpoint(d / "checkpoint")
    assert ckpt.policy_type == "gaussian_actor"
    bundle = export(d / "checkpoint", tmp_path_factory.mktemp("gapar") / request.param)
    return ckpt, bundle, dict(np.load(d / "reference.npz"))


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_gaussian_actor_matches_lerobot_06(case, backend):
    ckpt, bundle, ref = case
    pytest.importorskip(backend)
    policy = load_policy(bundle, backend)
    assert policy.type == "gaussian_actor"
    check_actor(policy, ckpt, ref)
