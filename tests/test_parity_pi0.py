"""Pi0 and Pi0.5 exported to ONNX and run by lerobot-edge vs LeRobot 0.6.1's `predict_action_chunk` on shared noise,
with and without RTC guidance. References come from scripts/lerobot_reference_pi.py (`make parity06-ref`);
the test skips, saying so, when they are absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import reference_dir

REPO = Path(__file__).resolve().parents[1]
TOL = 1e-4  # normalized units, full chunk (the contract)
pytestmark = pytest.mark.parity


def pi_reference_dir() -> Path | None:
    return reference_dir("current-0.6", "LEROBOT_EDGE_PI_REFERENCE_DIR")


REF = pi_reference_dir()
needs_ref = pytest.mark.skipif(REF is None or not (REF / "DONE").is_file(),
                               reason="no LeRobot 0.6.1 pi references: run `make parity06-ref` (needs .venv-lerobot06)")


@pytest.fixture(scope="module")
def pi_bundles(tmp_path_factory):
    """kind -> bundle exported from the reference checkpoint (once per kind)."""
    from lerobot_edge import export

    made = {}

    def get(kind: str) -> Path:
        if kind not in made:
            # the reference's processor records the tokenizer directory where it was generated: use its copy
            made[kind] = export(REF / kind / "checkpoint", tmp_path_factory.mktemp(kind) / "bundle",
                                tokenizer=str(REF / "tokenizer"))
        return made[kind]
    return get


def _obs(ref) -> dict:
    obs = {k[4:]: ref[k] for k in ref.files if k.startswith("obs.")}
    obs["task"] = [str(t) for t in ref["task"]]
    return obs


def _normalized_error(policy, got: np.ndarray, want: np.ndarray) -> float:
    """Error / per-dimension action scale: std for MEAN_STD, half the range for MIN_MAX / QUANTILES."""
    stats, mode = policy.bundle.stats()["action"], policy.manifest["normalization"]["action"]
    scale = {"MEAN_STD": lambda: stats["std"], "MIN_MAX": lambda: (stats["max"] - stats["min"]) / 2,
             "QUANTILES": lambda: (stats["q99"] - stats["q01"]) / 2}.get(mode, lambda: 1.0)()
    return float(np.abs((got.astype(np.float64) - want) / scale).max())


@needs_ref
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("kind", ["pi0", "pi05"])
@pytest.mark.parametrize("case", ["plain", "missing_camera", "rtc_linear", "rtc_exp"])
def test_chunk_equals_lerobot(kind, case, backend, pi_bundles):
    from lerobot_edge import load_policy

    pytest.importorskip(backend, reason=f"pip install 'lerobot-edge[{backend}]'")

    ref = np.load(REF / kind / f"{case}.npz")
    kw, load_kw = {}, {}
    if case.startswith("rtc"):
        load_kw = {"rtc": "guided", "rtc_options": {"schedule": str(ref["schedule"]),
                                                    "max_guidance_weight": float(ref["max_guidance_weight"]),
                                                    "execution_horizon": int(ref["execution_horizon"])}}
        kw = {"inference_delay": int(ref["inference_delay"]), "prev_chunk_left_over": ref["leftover"]}
    policy = load_policy(pi_bundles(kind), backend, **load_kw)
    got = policy.predict_action_chunk(_obs(ref), noise=ref["noise"], **kw)
    err = _normalized_error(policy, got, ref["chunk"])
    print(f"{kind} {case} {backend}: max |err| {err:.3g} normalized units")
    assert got.shape == ref["chunk"].shape
    assert err <= TOL
