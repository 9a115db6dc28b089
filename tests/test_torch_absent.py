"""The robot side imports and runs with torch absent (sys.modules["torch"] = None makes `import torch` fail)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PY310 = Path(__file__).resolve().parents[1] / ".venv-py310" / "bin" / "python"

SCRIPT = """
import sys
sys.modules["torch"] = None
sys.modules["lerobot"] = None
import numpy as np
import lerobot_edge
from lerobot_edge import runtime, backends, bundle, checkpoint, load_policy
from lerobot_edge.kernels import normalize, sinusoid, schedulers
from lerobot_edge.runtime import control
from lerobot_edge import doctor, selftest, hub
assert lerobot_edge.available_policies() == sorted(lerobot_edge.available_policies())
policy = load_policy(sys.argv[1])
a = policy.select_action({"observation.state": np.zeros(6, np.float32),
                          "observation.images.top": np.zeros((48, 64, 3), np.uint8)})
assert a.shape == (4,), a.shape
mods = [m for m in sys.modules if m.startswith(("torch", "rich", "lerobot_edge.policies.", "lerobot_edge.exporters"))
        and sys.modules[m] is not None]
assert not mods, mods
print("ok")
"""


@pytest.mark.parametrize("python", ["current", "3.10"])
def test_runtime_runs_without_torch(act_tiny_bundle, python):
    exe = sys.executable if python == "current" else str(PY310)
    if python == "3.10" and not PY310.exists():
        pytest.skip("no .venv-py310 (make py310-env builds it when pyenv has Python 3.10)")
    r = subprocess.run([exe, "-c", SCRIPT, str(act_tiny_bundle)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_loading_a_bundle_reads_no_checkpoint_code(act_tiny_bundle):
    """runtime/loader.py downloads through hub.py: the checkpoint package (workstation side) stays unimported."""
    code = ("import sys, lerobot_edge.runtime.loader as l; l.load_policy(sys.argv[1]); "
            "assert not [m for m in sys.modules if m.startswith('lerobot_edge.checkpoint')], 'checkpoint imported'")
    r = subprocess.run([sys.executable, "-c", code, str(act_tiny_bundle)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


REMOTE_SCRIPT = """
import sys
for m in ("torch", "lerobot", "onnxruntime", "openvino", "tensorrt"):
    sys.modules[m] = None
import numpy as np
from lerobot_edge.errors import BackendUnavailableError
from lerobot_edge.serving import RemotePolicy
policy = RemotePolicy("grpc://127.0.0.1:9", sys.argv[1], timeout=1.0)   # nothing listens on port 9
policy.reset()
try:
    policy.select_action({"observation.state": np.zeros(6, np.float32),
                          "observation.images.top": np.zeros((48, 64, 3), np.uint8)})
except BackendUnavailableError as e:
    assert e.retry_after > 0
else:
    raise AssertionError("no BackendUnavailableError")
mods = [m for m in sys.modules if m.startswith(("torch", "onnxruntime", "openvino", "lerobot_edge.backends.onnx",
                                                "lerobot_edge.backends.openvino", "lerobot_edge.backends.tensorrt",
                                                "lerobot_edge.policies.", "lerobot_edge.exporters"))
        and sys.modules[m] is not None]   # backends.base (the Session interface) is no inference library
assert not mods, mods
print("ok")
"""


def test_remote_policy_needs_no_torch_and_no_backend(act_tiny_bundle):
    """The robot side of a served policy: numpy + tritonclient; no torch, no inference library loaded."""
    pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] (the [remote] extra) is not installed")
    r = subprocess.run([sys.executable, "-c", REMOTE_SCRIPT, str(act_tiny_bundle)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
