"""`lerobot-edge serve --protocol lerobot`: LeRobot's own robot_client (lerobot 0.4.4, unmodified, in its
venv) drives a simulated robot with an ACT bundle served by lerobot-edge on 127.0.0.1, and every chunk it
receives equals what LeRobot's own policy_server computes for that observation (same timestamps and timesteps,
actions as float32 torch tensors). Plus the protocol's pickles, without LeRobot."""

from __future__ import annotations

import json
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, reference_dir

from lerobot_edge.errors import ObservationError
from lerobot_edge.serving import lerobot_pickle as LP

VENV_PY = REPO / ".venv-lerobot" / "bin" / "python"
REF = reference_dir()
CASE = REF / "ensemble" / "checkpoint" if REF else None


@pytest.mark.parity
@pytest.mark.serving
@pytest.mark.skipif(not VENV_PY.exists() or not (CASE and CASE.is_dir()),
                    reason="needs the LeRobot 0.4.4 venv and its reference checkpoints: run `make parity-ref`")
def test_lerobot_robot_client_gets_lerobots_actions(tmp_path):
    from serving_util import Server

    check = subprocess.run([str(VENV_PY), "-c", "import grpc, jsonschema, onnxruntime, lerobot.transport.services_pb2"],
                           capture_output=True)
    if check.returncode:
        pytest.skip("grpcio/jsonschema/onnxruntime missing in .venv-lerobot (make serve-lerobot-env adds them)")
    from lerobot_edge import export

    bundle = export(CASE, tmp_path / "act-edge", policy_type="act")
    with Server(bundle, "act", "--fps", "30", protocol="lerobot", python=str(VENV_PY), log=tmp_path / "s.log") as s:
        r = subprocess.run([str(VENV_PY), str(Path(__file__).parent / "lerobot_async_client.py"),
                            f"127.0.0.1:{s.port}", str(CASE), "6"], capture_output=True, text=True, timeout=300,
                           cwd=tmp_path, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        assert s.stop() == 0, s.log.read_text()[-2000:]
    assert r.returncode == 0, r.stderr[-4000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    print(out)
    assert out["chunks"] >= 6 and out["actions_sent"] > 0 and out["same_timestamps"]
    assert out["dtype"] == "torch.float32" and out["max_abs_diff"] <= 1e-5


def test_pickles_are_read_restrictedly_and_written_for_lerobot(monkeypatch):
    import sys
    import types
    from dataclasses import dataclass

    mod = types.ModuleType(LP.HELPERS)

    @dataclass
    class TimedObservation:
        timestamp: float
        timestep: int
        observation: dict
        must_go: bool = False

    TimedObservation.__module__, TimedObservation.__qualname__ = LP.HELPERS, "TimedObservation"
    mod.TimedObservation = TimedObservation
    monkeypatch.setitem(sys.modules, LP.HELPERS, mod)
    for name in ("lerobot", "lerobot.async_inference"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    obs = TimedObservation(1.5, 3, {"j0.pos": 0.25, "top": np.arange(12, dtype=np.uint8).reshape(2, 2, 3),
                                    "task": "pick"}, must_go=True)
    back = LP.loads(pickle.dumps(obs), LP.TimedObservation)
    assert back.timestep == 3 and back.must_go and np.array_equal(back.observation["top"], obs.observation["top"])
    with pytest.raises(ObservationError, match="os.system"):
        LP.loads(b"cos\nsystem\n(S'true'\ntR.", LP.TimedObservation)
    with pytest.raises(ObservationError, match="expected a TimedObservation"):
        LP.loads(pickle.dumps({"a": 1}), LP.TimedObservation)
    raw = LP.dumps_timed_actions(np.array([[1.0, -2.5], [0.125, 3.0]], np.float32), 10.0, 0.5, 7)
    import pickletools

    ops = [op.name for op, _, _ in pickletools.genops(raw)]
    assert ops[0] == "PROTO" and ops[-1] == "STOP" and ops.count("NEWOBJ") == 2
    globals_ = {a for op, a, _ in pickletools.genops(raw) if op.name == "SHORT_BINUNICODE"}
    assert {"torch", "tensor", "Tensor.float", LP.HELPERS, "TimedAction", "timestamp", "timestep"} <= globals_
