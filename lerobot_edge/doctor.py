"""`lerobot-edge doctor`: what this machine can run, and what to install for what is missing."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import platform
from pathlib import Path

from .bench.machine import _run


def _version(pkg: str) -> str | None:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return None


def _try(module: str):
    try:
        return importlib.import_module(module), None
    except Exception as e:  # a broken install should be reported, not crash the doctor
        return None, f"{type(e).__name__}: {e}"


def _onnxruntime() -> dict:
    ort, err = _try("onnxruntime")
    if ort is None:
        return {"ok": False, "error": err, "fix": "pip install 'lerobot-edge[onnxruntime]' (x86) or onnxruntime-gpu "
                "(NVIDIA GPU; on Jetson from the Jetson AI Lab index)"}
    return {"ok": True, "version": ort.__version__, "providers": ort.get_available_providers(),
            "package": "onnxruntime-gpu" if _version("onnxruntime-gpu") else "onnxruntime"}


def _openvino() -> dict:
    ov, err = _try("openvino")
    if ov is None:
        return {"ok": False, "error": err, "fix": "pip install 'lerobot-edge[openvino]' (Intel CPUs, iGPUs, NPUs)"}
    core = ov.Core()
    return {"ok": True, "version": ov.get_version(), "devices": core.available_devices}


def _tensorrt() -> dict:
    trt, err = _try("tensorrt")
    if trt is None:
        return {"ok": False, "error": err, "fix": "on Jetson: part of JetPack (sudo apt install nvidia-jetpack); on "
                "x86: pip install tensorrt --extra-index-url https://pypi.nvidia.com"}
    return {"ok": True, "version": trt.__version__}


def _gpu() -> dict | None:
    out = _run(["nvidia-smi", "--query-gpu=name,driver_version,compute_cap,memory.total", "--format=csv,noheader"])
    if out:
        name, driver, cc, mem = [x.strip() for x in out.splitlines()[0].split(",")]
        return {"name": name, "driver": driver, "compute_capability": cc, "memory": mem}
    return None


def _jetson() -> dict | None:
    model = Path("/proc/device-tree/model")
    if not Path("/etc/nv_tegra_release").exists() and not (model.exists() and "NVIDIA" in model.read_text()):
        return None
    clocks = _run(["jetson_clocks", "--show"]) or ""
    return {"model": model.read_text().strip("\x00\n") if model.exists() else None,
            "l4t": Path("/etc/nv_tegra_release").read_text().splitlines()[0] if Path("/etc/nv_tegra_release").exists()
            else None, "power_mode": _run(["nvpmodel", "-q"]),
            "clocks_locked": None if not clocks else "MinFreq" in clocks and _locked(clocks)}


def _locked(show: str) -> bool:
    """jetson_clocks --show prints MinFreq=… MaxFreq=… CurrentFreq=… per CPU; locked when min == max."""
    for line in show.splitlines():
        if "MinFreq=" in line and "MaxFreq=" in line:
            kv = dict(p.split("=", 1) for p in line.split() if "=" in p)
            if kv.get("MinFreq") != kv.get("MaxFreq"):
                return False
    return True


def _memory() -> dict:
    info = {}
    try:
        for line in open("/proc/meminfo"):
            k, v = line.split(":", 1)
            if k in ("MemTotal", "MemAvailable"):
                info[k] = f"{int(v.split()[0]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return info


def diagnose() -> dict:
    report = {"python": platform.python_version(), "machine": platform.machine(), "cores": os.cpu_count(),
              "memory": _memory(), "lerobot_edge": _version("lerobot-edge"),
              "backends": {"onnxruntime": _onnxruntime(), "openvino": _openvino(), "tensorrt": _tensorrt()},
              "cuda_python": _version("cuda-python"), "gpu": _gpu(), "jetson": _jetson(),
              "export_side": {"torch": _version("torch"), "onnx": _version("onnx"), "onnxscript": _version("onnxscript")}}
    advice = []
    if not any(b["ok"] for b in report["backends"].values()):
        advice.append("no backend can run bundles here: pip install 'lerobot-edge[onnxruntime]'")
    ort = report["backends"]["onnxruntime"]
    if report["gpu"] and ort["ok"] and "CUDAExecutionProvider" not in ort["providers"]:
        advice.append("a GPU is present but onnxruntime has no CUDA provider: install onnxruntime-gpu instead")
    if report["jetson"] and report["jetson"].get("clocks_locked") is False:
        advice.append("for benchmarks: sudo nvpmodel -m 0 && sudo jetson_clocks")
    if report["gpu"] and not report["backends"]["tensorrt"]["ok"]:
        advice.append("TensorRT engines need the tensorrt package (see backends.tensorrt.fix)")
    report["advice"] = advice
    return report


def format_report(r: dict) -> str:
    lines = [f"python {r['python']} on {r['machine']}, {r['cores']} cores, memory {r['memory']}",
             f"lerobot-edge {r['lerobot_edge']}"]
    for name, b in r["backends"].items():
        if b["ok"]:
            extra = b.get("providers") or b.get("devices") or ""
            lines.append(f"  ✓ {name:<12} {b['version']}  {extra}")
        else:
            lines.append(f"  ✗ {name:<12} {b['fix']}")
    lines.append(f"GPU: {r['gpu'] or 'none found (nvidia-smi)'}")
    if r["jetson"]:
        lines.append(f"Jetson: {r['jetson']}")
    exp = r["export_side"]
    lines.append("export side: " + (", ".join(f"{k} {v}" for k, v in exp.items() if v) or
                                    "not installed (pip install 'lerobot-edge[export]' on the workstation)"))
    lines += [f"advice: {a}" for a in r["advice"]]
    return "\n".join(lines)
