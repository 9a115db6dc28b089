"""gpu_check's PyTorch section for one policy (run in its own process by gpu_check.py): our modules on the device,
eager and torch.compile(mode="reduce-overhead", i.e. inductor + CUDA graphs), fp32 and bf16; p50/p99 of a whole
chunk with torch.cuda.synchronize() around each; each variant's chunk compared with eager fp32's on the same
inputs and noise. Every variant is in its own try/except and checks the section's time left before it starts.

bf16 = the weights cast to bf16 (as LeRobot's `dtype: bfloat16`) and the graphs run under bf16 autocast (ops
autocast keeps in fp32 stay fp32); the sampler state (x_t, DDIM sample) and its update stay float32.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from torch import nn

from gpu_models import BUILDERS, POLICIES, clone_as, param_count

# (mode, dtype) in priority order: what matters most runs first when the budget is short
VARIANTS = (("eager", "fp32"), ("eager", "bf16"), ("compile", "bf16"), ("compile", "fp32"))
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# seconds a variant needs at least before it is started (compile: inductor + CUDA graph capture)
MIN_LEFT = {"eager": 10.0, "compile": 45.0}


class Cast(nn.Module):
    """A graph under bf16 autocast (a no-op wrapper at fp32)."""

    def __init__(self, module: nn.Module, dtype: torch.dtype, device_type: str):
        super().__init__()
        self.module, self.dtype, self.device_type = module, dtype, device_type

    def forward(self, *args):
        with torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.dtype == torch.bfloat16):
            return self.module(*args)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_chunks(fn: Callable[[], torch.Tensor], device: torch.device, warmup: int, iterations: int,
                max_seconds: float) -> tuple[dict, torch.Tensor, float]:
    """-> (latency percentiles in ms over up to `iterations` chunks or `max_seconds`, the last chunk, the first
    call's seconds (compilation included))."""
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    first = time.perf_counter() - t0
    for _ in range(max(0, warmup - 1)):
        fn()
    _sync(device)
    times, stop = [], time.perf_counter() + max_seconds
    while len(times) < iterations and (time.perf_counter() < stop or len(times) < 3):
        t0 = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    a = np.asarray(times) * 1e3
    stats = {"p50_ms": round(float(np.percentile(a, 50)), 3), "p99_ms": round(float(np.percentile(a, 99)), 3),
             "mean_ms": round(float(a.mean()), 3), "min_ms": round(float(a.min()), 3), "n": len(times)}
    return stats, out, first


def _compare(out: torch.Tensor, ref: torch.Tensor | None) -> dict:
    if ref is None:
        return {}
    a, b = out.float().flatten(), ref.float().flatten()
    cos = torch.nn.functional.cosine_similarity(a, b, dim=0)
    return {"max_abs_vs_eager_fp32": float((a - b).abs().max()), "cosine_vs_eager_fp32": round(float(cos), 6),
            "finite": bool(torch.isfinite(a).all())}


def _wrap(graphs: dict[str, nn.Module], dtype: torch.dtype, device: torch.device, compile_mode: str | None):
    wrapped = {k: Cast(m, dtype, device.type) for k, m in graphs.items()}
    if compile_mode is None:
        return wrapped
    if compile_mode == "dynamo-only":   # CPU smoke: dynamo traces our modules, no inductor / CUDA graphs
        return {k: torch.compile(w, backend="eager", dynamic=False) for k, w in wrapped.items()}
    return {k: torch.compile(w, mode="reduce-overhead", dynamic=False) for k, w in wrapped.items()}


def run(name: str, device: torch.device, tiny: bool, budget_s: float, emit: Callable[[dict], None],
        iterations: int = 50, warmup: int = 3, variant_seconds: float = 10.0, smoke_compile: bool = False) -> None:
    """Emit {"kind": "config", ...} then one {"kind": "variant", ...} per variant (done, skipped or failed).
    Without CUDA the compile variants are skipped, or with `smoke_compile` traced by dynamo alone
    (backend="eager": checks that our modules compile, measures nothing)."""
    deadline = time.perf_counter() + budget_s
    cuda = device.type == "cuda"
    if cuda:
        torch.set_default_device(device)   # our modules create small tensors (masks, positions) without a device
    t0 = time.perf_counter()
    pol = BUILDERS[name](device, tiny)
    emit({"kind": "config", "policy": name, "what": POLICIES[name], "tiny": tiny, "device": str(device),
          "params": param_count(pol.graphs), "build_s": round(time.perf_counter() - t0, 2), "config": pol.config,
          "tf32": bool(torch.backends.cuda.matmul.allow_tf32) if cuda else None})
    models, ref = {"fp32": pol.graphs}, None
    for mode, dt in VARIANTS:
        row = {"kind": "variant", "variant": f"{mode}/{dt}", "mode": mode, "dtype": dt}
        left = deadline - time.perf_counter()
        if mode == "compile" and not cuda and not (tiny and smoke_compile):
            emit({**row, "status": "skipped", "reason": "no CUDA: mode='reduce-overhead' captures CUDA graphs"})
            continue
        if left < MIN_LEFT[mode] * (0.2 if tiny else 1.0):
            emit({**row, "status": "skipped", "reason": f"section time budget: {left:.0f} s left"})
            continue
        compile_mode = None if mode == "eager" else ("reduce-overhead" if cuda else "dynamo-only")
        try:
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
            if dt not in models:
                models[dt] = clone_as(pol.graphs, pol.make, DTYPES[dt], device)
            g = _wrap(models[dt], DTYPES[dt], device, compile_mode)

            def chunk():
                if compile_mode == "reduce-overhead":
                    torch.compiler.cudagraph_mark_step_begin()
                with torch.no_grad():
                    return pol.chunk(g, pol.inputs)

            stats, out, first = time_chunks(chunk, device, warmup, iterations,
                                            min(variant_seconds, max(1.0, deadline - time.perf_counter() - 5)))
            ref = out.detach().float().clone() if ref is None and (mode, dt) == ("eager", "fp32") else ref
            emit({**row, "status": "ok", **stats, "first_call_s": round(first, 2), "compile": compile_mode,
                  "peak_gpu_gb": round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 2) if cuda else None,
                  **_compare(out, ref)})
        except Exception as e:   # OOM, a compile failure: recorded, the next variant still runs
            emit({**row, "status": "error", "reason": f"{type(e).__name__}: {str(e)[:600]}"})
        finally:
            if compile_mode is not None:
                torch._dynamo.reset()
            if cuda:
                torch.cuda.empty_cache()
