"""What the numbers were measured on: CPU, cores, GPU, library versions, Jetson power mode, GEMM peak."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import shutil
import subprocess
import time

import numpy as np

FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "fma", "neon", "asimd")
PACKAGES = ("numpy", "onnxruntime", "onnxruntime-gpu", "openvino", "tensorrt", "torch", "lerobot-edge")


def _cpuinfo() -> tuple[str, list[str]]:
    model, flags = platform.processor() or platform.machine(), []
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "Model") and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                have = set(value.split())
                flags = [f for f in FLAGS_OF_INTEREST if f in have]
    except OSError:
        pass
    return model, flags


def _run(cmd: list[str]) -> str | None:
    if not shutil.which(cmd[0]):
        return None
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def gemm_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Measured float32 GEMM throughput (the roofline's ceiling): the best of numpy's BLAS and, where torch is
    installed (workstations), torch's. Winograd convolutions and bf16/int8 kernels can exceed it."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = a.T.copy()
    a @ b  # warm-up
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    try:
        import torch
    except ImportError:  # the robot side: numpy's BLAS only
        return 2 * n ** 3 / best / 1e9
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    ta @ tb
    best = min(best, *(_timed(lambda: ta @ tb) for _ in range(repeats)))
    return 2 * n ** 3 / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def machine_record() -> dict:
    model, flags = _cpuinfo()
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    gpu = _run(["nvidia-smi", "--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"])
    jetson = None
    if os.path.exists("/etc/nv_tegra_release"):
        jetson = {"release": open("/etc/nv_tegra_release").readline().strip(),
                  "nvpmodel": _run(["nvpmodel", "-q"]), "jetson_clocks": _run(["jetson_clocks", "--show"])}
    return {"cpu": model, "cpu_flags": flags, "cores": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(), "os": platform.platform(), "gpu": gpu, "jetson": jetson,
            "versions": versions, "gemm_peak_gflops": round(gemm_peak_gflops(), 1)}
