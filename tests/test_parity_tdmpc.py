"""TDMPC parity against LeRobot 0.4.4 (`make parity-ref-more`; skipped with a reason when absent).

Networks (z, pi) <= 1e-4 on the same observations; select_action over several steps equal with use_mpc=False
(deterministic) and with the planner, where LeRobot's draws were served from the same seeded numpy
generator our runtime uses (injected draws, not a statistical check).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_parity_sac import more_reference_dir

from lerobot_edge import export, load_policy
from lerobot_edge.checkpoint import load_checkpoint


@pytest.fixture(scope="module", params=("tdmpc_pi", "tdmpc_mpc"))
def case(request, tmp_path_factory):
    root = more_reference_dir()
    d = root / "tdmpc" / request.param if root else None
    if d is None or not (d / "reference.npz").is_file():
        pytest.skip("no LeRobot TDMPC reference: run `make parity-ref-more` (needs the LeRobot 0.4.4 venv)")
    bundle = export(d / "checkpoint", tmp_path_factory.mktemp("tdpar") / request.param)
    return load_checkpoint(d / "checkpoint"), bundle, dict(np.load(d / "reference.npz"))


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_tdmpc_matches_lerobot(case, backend):
    ckpt, bundle, ref = case
    pytest.importorskip(backend)
    p = load_policy(bundle, backend, seed=int(ref["draw_seed"]))
    steps = [{k.split(".", 2)[2]: v for k, v in ref.items() if k.startswith(f"obs.{i}.")}
             for i in range(int(ref["n_steps"]))]
    feed, _ = p.preprocess(steps[0])
    z = p.sessions["encoder"].run(feed)["z"]
    assert np.abs(z - ref["z"]).max() <= 1e-4
    assert np.abs(p.sessions["pi"].run({"z": z})["action"] - ref["pi"]).max() <= 1e-4
    st = ckpt.stats["action"]
    scale = (st["max"] - st["min"]) / 2                                   # MIN_MAX: normalized units
    p.reset()
    got = np.stack([p.select_action(o) for o in steps])
    assert np.abs((got - ref["actions"]) / scale).max() <= 1e-4
