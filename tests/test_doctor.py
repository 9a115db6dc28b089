"""`lerobot-edge doctor` reports what runs here and how to get the rest, without importing torch."""

from __future__ import annotations

import json
import subprocess
import sys


def test_doctor_json_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from lerobot_edge.cli.main import main\nsys.exit(main(['doctor', '--json']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["backends"]["onnxruntime"]["ok"] is True
    assert "CPUExecutionProvider" in report["backends"]["onnxruntime"]["providers"]
    trt = report["backends"]["tensorrt"]
    assert trt["ok"] or "JetPack" in trt["fix"]
    assert report["cores"] >= 1 and "MemTotal" in report["memory"]
