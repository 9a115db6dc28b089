"""VQ-BeT parity against LeRobot 0.4.4 (`make parity-ref-vqbet`; skipped with a reason when absent).

Networks at the current step's token (code logits, offsets, VQ-VAE decoder output) <= 1e-4 on the same
observations, and select_action over several chunks equal in normalized units, with LeRobot's
torch.multinomial replaced by an inverse CDF of recorded uniforms that are injected here as `noise` (the
same draws on both sides, not a statistical check). Cases: independent codes (group norm, center crop) and
sequential selection (batch norm, no crop).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import reference_dir

from lerobot_edge import export, load_policy
from lerobot_edge.checkpoint import load_checkpoint

pytestmark = pytest.mark.parity
REPO = Path(__file__).resolve().parents[1]
CASES = ("vqbet", "vqbet_seq")


def vqbet_reference_dir() -> Path | None:
    return reference_dir("vqbet-current", "LEROBOT_EDGE_REFERENCE_VQBET_DIR")


@pytest.fixture(scope="module", params=CASES)
def case(request, tmp_path_factory):
    root = vqbet_reference_dir()
    d = root / request.param if root else None
    if d is None or not (d / "reference.npz").is_file():
        pytest.skip("no LeRobot VQ-BeT reference: run `make parity-ref-vqbet` (needs the LeRobot 0.4.4 venv)")
    bundle = export(d / "checkpoint", tmp_path_factory.mktemp("vqpar") / request.param)
    return load_checkpoint(d / "checkpoint"), bundle, dict(np.load(d / "reference.npz"))


def _steps(ref: dict) -> list[dict]:
    return [{k.split(".", 2)[2]: v for k, v in ref.items() if k.startswith(f"obs.{i}.")}
            for i in range(int(ref["n_steps"]))]


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_vqbet_matches_lerobot(case, backend):
    ckpt, bundle, ref = case
    pytest.importorskip(backend)
    p = load_policy(bundle, backend)
    steps = _steps(ref)
    feed, _ = p.preprocess(steps[0])
    s = p.n_obs_steps
    out = p.sessions["policy"].run({k: np.stack([v] * s, axis=1) for k, v in feed.items()})  # first call: copies
    codes = ref["codes"][0]
    if "code_logits" in ref:
        assert np.abs(out["code_logits"] - ref["code_logits"]).max() <= 1e-4
    else:
        assert np.abs(out["primary_logits"] - ref["primary_logits"]).max() <= 1e-4
        given = out["secondary_logits"][np.arange(len(codes)), codes[:, 0]]        # rows of the drawn primary
        assert np.abs(given - ref["secondary_logits"]).max() <= 1e-4
    assert np.abs(out["offsets"] - ref["offsets"]).max() <= 1e-4
    onehot = np.eye(p.n_codes, dtype=np.float32)[codes]
    assert np.abs(p.sessions["decode"].run({"codes_onehot": onehot})["decoded"] - ref["decoded"]).max() <= 1e-4
    st = ckpt.stats["action"]
    scale = (st["max"] - st["min"]) / 2                                   # MIN_MAX: normalized units
    p.reset()
    got, drawn = [], []
    for i, obs in enumerate(steps):
        got.append(p.select_action(obs, noise=ref["uniforms"][i // p.chunk_size]))
        if i % p.chunk_size == 0:
            drawn.append(p.last_codes)
    np.testing.assert_array_equal(np.stack(drawn), ref["codes"])
    assert np.abs((np.stack(got) - ref["actions"]) / scale).max() <= 1e-4
    assert len({tuple(c) for c in ref["codes"].reshape(-1, 2)}) > 1      # the draws matter in this reference
