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


def test_doctor_text_says_how_to_get_tensorrt_here():
    """TensorRT is absent on this x86 CPU machine: the line names NVIDIA's wheels, not a failing pip extra."""
    r = subprocess.run([sys.executable, "-m", "lerobot_edge", "doctor"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if "tensorrt" in ln)
    if "✗" in line:
        assert "not installed" in line and "pip install tensorrt --extra-index-url https://pypi.nvidia.com" in line


def test_tensorrt_hint_per_platform(tmp_path, monkeypatch):
    from lerobot_edge import doctor

    release = tmp_path / "nv_tegra_release"
    release.write_text("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: x\n")
    jetson = doctor.tensorrt_install_hint(release)
    assert "JetPack 6" in jetson and "3.10" in jetson and "sudo apt install nvidia-jetpack" in jetson
    assert "python3-libnvinfer" in jetson and "--system-site-packages" in jetson and "pip install tensorrt" not in jetson
    missing = tmp_path / "absent"
    assert doctor.tensorrt_install_hint(missing, "x86_64", "Linux").startswith(
        "pip install tensorrt --extra-index-url https://pypi.nvidia.com")
    assert "pip install tensorrt" in doctor.tensorrt_install_hint(missing, "aarch64", "Linux")  # SBSA servers
    assert "needs an NVIDIA GPU" in doctor.tensorrt_install_hint(missing, "arm64", "Darwin")
    # the report uses it: a Jetson without the bindings gets the JetPack hint (and advice, as it has a GPU)
    monkeypatch.setattr(doctor, "TEGRA_RELEASE", release)
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    report = doctor.diagnose()
    assert report["backends"]["tensorrt"]["ok"] is False and "JetPack 6" in report["backends"]["tensorrt"]["fix"]
    assert report["jetson"]["l4t"].startswith("# R36")
    assert any("nvidia-jetpack" in a for a in report["advice"])
