"""What the numbers were measured on: CPU, cores, GPU, library versions, Jetson power mode, fp32 and bf16 GEMM
peaks."""

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


def gemm_peak_gflops(sizes: tuple[int, ...] = (1024, 2048), repeats: int = 7) -> float:
    """Measured float32 GEMM throughput (the roofline's ceiling): the best over square sizes and repeats of
    numpy's BLAS and, where torch is installed (workstations), torch's. Taking the best filters out the moments
    another process held a core; the bench probes again after its rounds and keeps the higher figure.
    Winograd convolutions and bf16/int8 kernels can still exceed it (fewer multiplies than the nominal FLOPs)."""
    rng = np.random.default_rng(0)
    try:
        import torch
    except ImportError:  # the robot side: numpy's BLAS only
        torch = None
    best = 0.0
    for n in sizes:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = a.T.copy()
        matmuls = [lambda: a @ b]
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            matmuls.append(lambda: ta @ tb)
        for mm in matmuls:
            mm()  # warm-up: thread pool and page faults
            seconds = min(_timed(mm) for _ in range(repeats))
            best = max(best, 2 * n ** 3 / seconds / 1e9)
    return best


BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def bf16_gemm_peak(sizes: tuple[int, ...] = (1024, 2048), repeats: int = 7) -> tuple[float | None, str | None]:
    """Measured bf16 GEMM throughput (GFLOP/s) and the library that reached it, on CPUs with bf16 instructions
    (avx512_bf16, AMX): the best over square sizes of torch's bf16 matmul (oneDNN; AMX tiles where the CPU
    has them) and an OpenVINO MatMul compiled with INFERENCE_PRECISION_HINT=bf16 (what a bf16 bundle runs
    on; the robot side has no torch). (None, None) without bf16 instructions or either library."""
    if not set(BF16_FLAGS) & set(_cpuinfo()[1]):
        return None, None
    best, who = 0.0, None
    for name, make in (("torch", _torch_bf16), ("openvino", _openvino_bf16)):
        for n in sizes:
            try:
                mm = make(n)
            except Exception:  # the library is absent or cannot build the probe here
                break
            mm()  # warm-up: thread pool, packing, page faults
            gflops = 2 * n ** 3 / min(_timed(mm) for _ in range(repeats)) / 1e9
            if gflops > best:
                best, who = gflops, name
    return (round(best, 1), who) if who else (None, None)


def _torch_bf16(n: int):
    import torch

    a = torch.randn(n, n, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    b = a.t().contiguous()
    return lambda: a @ b


def _openvino_bf16(n: int):
    import openvino as ov
    from openvino import opset13 as ops

    rng = np.random.default_rng(0)
    x = ops.parameter([n, n], ov.Type.f32)
    model = ov.Model([ops.matmul(x, ops.constant(rng.standard_normal((n, n), dtype=np.float32)), False, False)], [x])
    request = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "bf16",
                                                     "PERFORMANCE_HINT": "LATENCY"}).create_infer_request()
    a = rng.standard_normal((n, n), dtype=np.float32)
    return lambda: request.infer({0: a})


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def machine_record(probe_sizes: tuple[int, ...] = (1024, 2048)) -> dict:
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
            "versions": versions, "gemm_peak_gflops": round(gemm_peak_gflops(probe_sizes), 1),
            **bf16_record(probe_sizes)}


def bf16_record(probe_sizes: tuple[int, ...] = (1024, 2048)) -> dict:
    """The machine record's bf16 probe: {"bf16_gemm_peak_gflops": GFLOP/s or None, "bf16_gemm_probe": library}."""
    peak, who = bf16_gemm_peak(probe_sizes)
    return {"bf16_gemm_peak_gflops": peak, "bf16_gemm_probe": who}
