"""LeRobotPolicy is a drop-in for LeRobot's policy in LeRobot's own control code (`predict_action`, as called
by lerobot-record): run in the LeRobot 0.4.4 venv that `make parity-env` builds, against LeRobot's ACT."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import REPO, reference_dir

from lerobot_edge import export

VENV_PY = REPO / ".venv-lerobot" / "bin" / "python"
REF = reference_dir()
CASE = REF / "multicam_prenorm" / "checkpoint" if REF else None


@pytest.mark.parity
@pytest.mark.skipif(not VENV_PY.exists() or not (CASE and CASE.is_dir()),
                    reason="needs the LeRobot 0.4.4 venv and its reference checkpoints: run `make parity-ref`")
def test_predict_action_with_the_wrapper_equals_lerobot(tmp_path):
    check = subprocess.run([str(VENV_PY), "-c", "import lerobot_edge, onnxruntime"], capture_output=True)
    if check.returncode:
        pytest.skip("lerobot-edge/onnxruntime not installed in .venv-lerobot (make parity-env installs them)")
    bundle = export(CASE, tmp_path / "b", policy_type="act")
    r = subprocess.run([str(VENV_PY), str(Path(__file__).parent / "lerobot_dropin.py"), str(CASE), str(bundle), "9"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert float(r.stdout.strip().splitlines()[-1]) < 1e-4
