"""SmolVLA exported to ONNX (and run with onnxruntime and OpenVINO) vs LeRobot 0.6.1's `predict_action_chunk` on
shared noise, with and without RTC guidance. LeRobot pads the language to the longest prompt of the batch; the
bundle pads to tokenizer_max_length: equal chunks prove the two paddings agree. References come from
scripts/lerobot_reference_smolvla.py (`make smolvla-ref`); the test skips, saying so, when they are absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import reference_dir as conftest_reference_dir

REPO = Path(__file__).resolve().parents[1]
TOL = 1e-4  # normalized units, full chunk (the contract)
pytestmark = pytest.mark.parity


def reference_dir() -> Path | None:
    return conftest_reference_dir("current-smolvla", "LEROBOT_EDGE_SMOLVLA_REFERENCE_DIR")


REF = reference_dir()
needs_ref = pytest.mark.skipif(REF is None or not (REF / "DONE").is_file(),
                               reason="no LeRobot 0.6.1 SmolVLA references: run `make smolvla-ref` (needs .venv-lerobot06)")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from lerobot_edge import export

    # the checkpoint records the VLM directory where it was generated: point --vlm at the reference's copy
    return export(REF / "smolvla" / "checkpoint", tmp_path_factory.mktemp("smolvla") / "bundle", vlm=str(REF / "vlm"))


def _obs(ref) -> dict:
    obs = {k[4:]: ref[k] for k in ref.files if k.startswith("obs.")}
    obs["task"] = [str(t) for t in ref["task"]]
    return obs


def _normalized_error(policy, got: np.ndarray, want: np.ndarray) -> float:
    std = policy.bundle.stats()["action"]["std"]  # MEAN_STD actions
    return float(np.abs((got.astype(np.float64) - want) / std).max())


@needs_ref
def test_reference_pads_to_the_longest_prompt_not_the_bundle_length(bundle):
    import json

    ref = np.load(REF / "smolvla" / "plain.npz")
    max_length = json.loads((bundle / "manifest.json").read_text())["runtime"]["tokenizer"]["max_length"]
    assert int(ref["lang_len"]) < max_length   # so the parity below covers "longest" vs "max_length"


@needs_ref
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("case", ["plain", "missing_camera", "rtc_linear", "rtc_exp"])
def test_chunk_equals_lerobot(case, backend, bundle):
    from lerobot_edge import load_policy

    pytest.importorskip(backend, reason=f"pip install 'lerobot-edge[{backend}]'")
    ref = np.load(REF / "smolvla" / f"{case}.npz")
    kw, load_kw = {}, {}
    if case.startswith("rtc"):
        load_kw["rtc"] = "guided"
        load_kw["rtc_options"] = {"schedule": str(ref["schedule"]), "max_guidance_weight": float(ref["max_guidance_weight"]),
                                  "execution_horizon": int(ref["execution_horizon"])}
        kw = {"inference_delay": int(ref["inference_delay"]), "prev_chunk_left_over": ref["leftover"]}
    policy = load_policy(bundle, backend, **load_kw)
    got = policy.predict_action_chunk(_obs(ref), noise=ref["noise"], **kw)
    err = _normalized_error(policy, got, ref["chunk"])
    print(f"smolvla {case} {backend}: max |err| {err:.3g} normalized units")
    assert got.shape == ref["chunk"].shape
    assert err <= TOL
