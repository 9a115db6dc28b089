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


TEGRA_RELEASE = Path("/etc/nv_tegra_release")  # present on every Jetson (L4T)
NVIDIA_PYPI = "https://pypi.nvidia.com"
# L4T major -> (JetPack, the system Python its TensorRT bindings are built for)
_JETPACK = {"R35": ("JetPack 5", "3.8"), "R36": ("JetPack 6", "3.10"), "R38": ("JetPack 7", "3.12")}


def tensorrt_install_hint(tegra_release: Path | None = None, machine: str | None = None,
                          system: str | None = None) -> str:
    """How TensorRT's Python bindings come on this platform: from JetPack (apt) on a Jetson, never from pip there;
    NVIDIA's wheels elsewhere. Arguments default to this machine (they exist for tests)."""
    tegra_release = TEGRA_RELEASE if tegra_release is None else tegra_release
    if tegra_release.exists():
        l4t = tegra_release.read_text().split(" ", 2)[1:2] or [""]
        jp, py = _JETPACK.get(l4t[0], (None, None))
        which = f" (L4T {l4t[0]} = {jp}: bindings for the system Python {py})" if jp else ""
        return (f"Jetson: TensorRT comes with JetPack, not pip{which}: sudo apt install nvidia-jetpack (or only the "
                "bindings: sudo apt install python3-libnvinfer); use the system python3 or a venv made with "
                "--system-site-packages")
    machine, system = machine or platform.machine(), system or platform.system()
    if (system, machine.lower()) in {("Linux", "x86_64"), ("Linux", "aarch64"), ("Windows", "amd64")}:
        return (f"pip install tensorrt --extra-index-url {NVIDIA_PYPI} (NVIDIA's wheels; needs an NVIDIA GPU and "
                "driver; on a Jetson TensorRT comes with JetPack instead)")
    return f"TensorRT needs an NVIDIA GPU: Linux/Windows x86_64, Linux aarch64, or a Jetson with JetPack ({system} {machine})"


def _tensorrt() -> dict:
    cuda_python = _version("cuda-python") or _version("cuda-bindings")
    trt, err = _try("tensorrt")
    if trt is None:
        return {"ok": False, "error": err, "fix": tensorrt_install_hint(), "cuda_python": cuda_python}
    out = {"ok": True, "version": trt.__version__, "cuda_python": cuda_python}
    if cuda_python is None:  # the backend copies buffers with cuda-python's runtime API
        out["fix"] = "the tensorrt backend also needs cuda-python: pip install 'lerobot-edge[tensorrt]'"
    return out


def _gpu() -> dict | None:
    out = _run(["nvidia-smi", "--query-gpu=name,driver_version,compute_cap,memory.total", "--format=csv,noheader"])
    if out:
        name, driver, cc, mem = [x.strip() for x in out.splitlines()[0].split(",")]
        return {"name": name, "driver": driver, "compute_capability": cc, "memory": mem}
    return None


def _jetson() -> dict | None:
    model = Path("/proc/device-tree/model")
    if not TEGRA_RELEASE.exists() and not (model.exists() and "NVIDIA" in model.read_text()):
        return None
    clocks = _run(["jetson_clocks", "--show"]) or ""
    return {"model": model.read_text().strip("\x00\n") if model.exists() else None,
            "l4t": TEGRA_RELEASE.read_text().splitlines()[0] if TEGRA_RELEASE.exists()
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
    trt = report["backends"]["tensorrt"]
    if (report["gpu"] or report["jetson"]) and (not trt["ok"] or trt.get("fix")):
        advice.append(f"TensorRT engines: {trt['fix']}")
    report["advice"] = advice
    return report


def format_report(r: dict) -> str:
    lines = [f"python {r['python']} on {r['machine']}, {r['cores']} cores, memory {r['memory']}",
             f"lerobot-edge {r['lerobot_edge']}"]
    for name, b in r["backends"].items():
        if b["ok"]:
            extra = b.get("providers") or b.get("devices") or ""
            lines.append(f"  ✓ {name:<12} {b['version']}  {extra}" + (f"  ({b['fix']})" if b.get("fix") else ""))
        else:
            lines.append(f"  ✗ {name:<12} not installed: {b['fix']}")
    lines.append(f"GPU: {r['gpu'] or 'none found (nvidia-smi)'}")
    if r["jetson"]:
        lines.append(f"Jetson: {r['jetson']}")
    exp = r["export_side"]
    lines.append("export side: " + (", ".join(f"{k} {v}" for k, v in exp.items() if v) or
                                    "not installed (pip install 'lerobot-edge[export]' on the workstation)"))
    lines += [f"advice: {a}" for a in r["advice"]]
    return "\n".join(lines)
