#!/usr/bin/env python3
"""One GPU check, `make gpu-check` (PYTHONPATH=. python benchmarks/gpu_check.py): in at most 8 minutes on one
NVIDIA GPU, what lerobot-edge's GPU path does on this machine.

- the machine record: GPU name, driver, CUDA (torch's build and the driver's), compute capability, memory, CPU,
  library versions, which ONNX Runtime providers and whether TensorRT import;
- our PyTorch modules on CUDA (LeRobot's math and parameter names; random weights built on the GPU, no
  checkpoint file): ACT aloha, Diffusion PushT DDIM-10, SmolVLA full size, pi0 full size (3 cameras); eager vs
  torch.compile(mode="reduce-overhead") (inductor + CUDA graphs), fp32 and bf16; p50/p99 of a whole chunk with
  torch.cuda.synchronize(), each chunk compared with eager fp32's (benchmarks/gpu_check_torch.py);
- ONNX Runtime's CUDA / TensorRT providers through lerobot-edge's backend (plain, IOBinding, IOBinding + CUDA
  graphs) and TensorRT itself, when they import; skipped with the reason otherwise (gpu_check_engines.py).

Needs torch + numpy (+ onnx, and onnxscript or torch's TorchScript exporter, for the engine sections) and this
source tree on PYTHONPATH; nothing installed of lerobot-edge's own. Each section runs in its own process with a
time budget (what is left of the deadline shared by weight), so a hung compile, an OOM or a CUDA error costs
that section only; results are streamed, so a killed section keeps what it finished. Without CUDA (or with
--cpu-smoke) every GPU section is skipped with the reason and tiny configs run on the CPU instead, to check the
script itself (a minute or two). Writes gpu_<gpu-name>.{json,md} to $OUT when set, else benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# (section, weight of the shared time budget): order = priority
SECTIONS = (("torch:act_aloha", 1.0), ("torch:diffusion_pusht_ddim10", 1.2), ("torch:smolvla_full", 1.6),
            ("torch:pi0_full", 2.2), ("onnxruntime", 1.0), ("tensorrt", 0.8))
IMPORT_S = 15.0          # a child's start-up (torch import, CUDA context) before its own clock starts
GRACE_S = 20.0           # past its budget before a child is killed


# -- child side -----------------------------------------------------------------------------------------
def machine_record() -> dict:
    from gpu_check_report import machine

    return machine(REPO)


def child(args) -> int:
    out = open(args.result, "a", buffering=1)

    def emit(d: dict) -> None:
        out.write(json.dumps(d, default=str) + "\n")

    try:
        if args.child == "machine":
            emit({"kind": "machine", **machine_record()})
            return 0
        import torch

        device = torch.device("cuda" if args.device == "cuda" else "cpu")
        if device.type == "cpu":
            torch.set_num_threads(1)   # a smoke run on a shared CPU: spinning OpenMP threads would starve it
        if args.child.startswith("torch:"):
            import gpu_check_torch

            smoke = {"iterations": 2, "warmup": 1, "variant_seconds": 3.0, "smoke_compile": args.smoke_compile
                     or args.child == SECTIONS[0][0]} if args.tiny else {}
            gpu_check_torch.run(args.child.split(":", 1)[1], device, args.tiny, args.budget, emit, **smoke)
        else:
            import gpu_check_engines

            smoke = {"iterations": 2, "warmup": 1, "variant_seconds": 3.0, "smoke_all": args.smoke_compile} \
                if args.tiny else {}
            gpu_check_engines.run(args.child, device, args.tiny, args.budget, emit, **smoke)
    except Exception as e:
        import traceback

        emit({"kind": "fatal", "reason": f"{type(e).__name__}: {str(e)[:600]}",
              "traceback": traceback.format_exc()[-2000:]})
        return 1
    return 0


# -- parent side ----------------------------------------------------------------------------------------
def run_child(section: str, budget: float, device: str, tiny: bool,
              smoke_compile: bool = False) -> tuple[list[dict], str | None, float]:
    """Run one section in its own process group; -> (its lines, why it ended abnormally or None, seconds)."""
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl", delete=False) as f:
        result = f.name
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE), os.environ.get("PYTHONPATH", "")])}
    flags = ["-S"] if sys.flags.no_site else []   # the child sees the packages the parent sees
    cmd = [sys.executable, *flags, str(Path(__file__).resolve()), "--child", section, "--result", result,
           "--budget", f"{max(1.0, budget - IMPORT_S):.1f}", "--device", device] + (["--tiny"] if tiny else []) + \
        (["--smoke-all"] if smoke_compile else [])
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    why = None
    try:
        log, _ = proc.communicate(timeout=budget + GRACE_S)
        if proc.returncode != 0:
            why = f"exit code {proc.returncode}: {log.strip()[-800:]}"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)   # the process group this function started, nothing else
        proc.communicate()
        why = f"timeout: killed after {budget + GRACE_S:.0f} s"
    lines = [json.loads(x) for x in Path(result).read_text().splitlines() if x.strip()]
    Path(result).unlink(missing_ok=True)
    return lines, why, time.perf_counter() - t0


def plan_sections(machine: dict, gpu: bool, only: set[str] | None) -> list[tuple[str, float, str | None]]:
    """(section, weight, skip reason) for every section, from the machine record."""
    out = []
    torch_err = (machine.get("torch") or {}).get("error")
    for name, w in SECTIONS:
        skip = None
        if only and name not in only:
            skip = "not selected (--only)"
        elif torch_err:
            skip = f"torch does not import here: {torch_err}"
        elif name == "onnxruntime":
            ort = machine.get("onnxruntime") or {}
            if ort.get("error"):
                skip = f"onnxruntime does not import: {ort['error']}"
            elif gpu and "CUDAExecutionProvider" not in ort.get("providers", []):
                skip = (f"onnxruntime {ort.get('version')} has no CUDA provider (providers {ort.get('providers')}): "
                        "a CPU build; install onnxruntime-gpu for the CUDA / TensorRT providers")
        elif name == "tensorrt":
            trt = machine.get("tensorrt") or {}
            if trt.get("error"):
                skip = f"TensorRT does not import: {trt['error']}"
            elif not gpu:
                skip = "no CUDA device"
        out.append((name, w, skip))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu-smoke", action="store_true", help="tiny configs on the CPU even where CUDA exists")
    p.add_argument("--smoke-all", dest="smoke_compile", action="store_true",
                   help="CPU smoke run: trace every policy with dynamo (backend='eager'), not only the first, "
                        "and export Diffusion for the engine sections too (minutes)")
    p.add_argument("--deadline", type=float, help="total seconds (default 450 with a GPU, 300 without)")
    p.add_argument("--only", help="comma-separated sections, e.g. torch:act_aloha,onnxruntime")
    p.add_argument("--out", help="output directory (default $OUT, else benchmarks/results)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--budget", type=float, default=60.0, help=argparse.SUPPRESS)
    p.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    from gpu_check_report import assemble, write

    started, t0 = datetime.now(timezone.utc), time.perf_counter()
    lines, why, secs = run_child("machine", 60.0 + IMPORT_S, "cpu", False)
    machine = next((x for x in lines if x.get("kind") == "machine"), {"error": why or "no machine record"})
    gpu = bool((machine.get("torch") or {}).get("cuda_available")) and not args.cpu_smoke
    deadline = args.deadline or (450.0 if gpu else 300.0)
    only = set(args.only.split(",")) if args.only else None
    plan = plan_sections(machine, gpu, only)
    results = []
    for i, (name, w, skip) in enumerate(plan):
        if skip:
            results.append({"section": name, "status": "skipped", "reason": skip})
            continue
        left = deadline - (time.perf_counter() - t0) - 10.0
        pending = sum(wt for n, wt, s in plan[i:] if not s)
        budget = left * w / pending
        if budget < 20.0:
            results.append({"section": name, "status": "skipped", "reason": f"deadline: {left:.0f} s left"})
            continue
        print(f"gpu-check: {name} ({budget:.0f} s budget)", file=sys.stderr, flush=True)
        lines, why, secs = run_child(name, budget, "cuda" if gpu else "cpu", not gpu, args.smoke_compile)
        results.append({"section": name, "budget_s": round(budget, 1), "wall_s": round(secs, 1), "lines": lines,
                        "ended": why})
    report = assemble(machine, results, gpu, started, time.perf_counter() - t0, deadline)
    out_dir = Path(args.out or os.environ.get("OUT") or HERE / "results")
    paths = write(report, out_dir)
    print(paths["md"].read_text())
    print(f"gpu-check: wrote {paths['json']} and {paths['md']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
