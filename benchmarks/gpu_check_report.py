"""gpu_check's machine record and report (JSON + Markdown). Standard library only, except the machine record,
which imports torch, onnxruntime and tensorrt to say what they are (each failure is recorded, never raised)."""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

PACKAGES = ("torch", "numpy", "safetensors", "onnx", "onnxscript", "onnxruntime", "onnxruntime-gpu", "tensorrt",
            "cuda-python", "cupy-cuda12x", "cupy-cuda13x", "lerobot", "lerobot-edge")
REPORT_FORMAT = "lerobot-edge-gpu-check"


def _run(cmd: list[str]) -> str | None:
    if not shutil.which(cmd[0]):
        return None
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.split(":")[0].strip() in ("model name", "Model"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _torch() -> dict:
    try:
        import torch
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"}
    rec = {"version": torch.__version__, "cuda_build": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
    try:
        rec["cudnn"] = torch.backends.cudnn.version()
        if rec["cuda_available"]:
            props = torch.cuda.get_device_properties(0)
            rec.update(gpu=props.name, compute_capability=f"{props.major}.{props.minor}", gpus=torch.cuda.device_count(),
                       memory_gb=round(props.total_memory / 2 ** 30, 1), sms=props.multi_processor_count,
                       tf32_matmul=torch.backends.cuda.matmul.allow_tf32)
    except Exception as e:
        rec["error_details"] = f"{type(e).__name__}: {e}"
    return rec


def _onnxruntime() -> dict:
    try:
        import onnxruntime as ort
        return {"version": ort.__version__, "providers": ort.get_available_providers()}
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"}


def _tensorrt() -> dict:
    try:
        import tensorrt as trt
        rec = {"version": trt.__version__}
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"}
    import importlib

    rec["cuda_python"] = None
    for mod in ("cuda.bindings.runtime", "cuda.cudart"):   # cuda-python >= 12.6, older
        try:
            importlib.import_module(mod)
            rec["cuda_python"] = mod
            break
        except Exception as e:
            rec["cuda_python_error"] = f"{type(e).__name__}: {e}"
    return rec


def machine(repo: Path) -> dict:
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    smi = _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit,pstate",
                "--format=csv,noheader"])
    commit = _run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])
    return {"cpu": _cpu(), "cores": os.cpu_count(), "machine": platform.machine(), "os": platform.platform(),
            "python": platform.python_version(), "nvidia_smi": smi, "driver_cuda": _driver_cuda(),
            "torch": _torch(), "onnxruntime": _onnxruntime(), "tensorrt": _tensorrt(), "versions": versions,
            "lerobot_edge_commit": commit}


def _driver_cuda() -> str | None:
    out = _run(["nvidia-smi"])
    m = re.search(r"CUDA Version:\s*([\d.]+)", out or "")
    return m.group(1) if m else None


# -- the report -----------------------------------------------------------------------------------------
def assemble(machine: dict, results: list[dict], gpu: bool, started, wall_s: float, deadline: float) -> dict:
    sections = []
    for r in results:
        if "lines" not in r:
            sections.append(r)
            continue
        lines = r["lines"]
        config = next((x for x in lines if x["kind"] == "config"), None)
        fatal = next((x for x in lines if x["kind"] == "fatal"), None)
        variants = [x for x in lines if x["kind"] == "variant"]
        exports = [x for x in lines if x["kind"] == "export"]
        errors = [v for v in variants if v["status"] == "error"]
        status = "error" if fatal or config is None else ("timeout" if (r["ended"] or "").startswith("timeout")
                                                          else "partial" if errors else "ok")
        reason = (fatal or {}).get("reason") or r["ended"]
        sections.append({"section": r["section"], "status": status, "reason": reason, "budget_s": r["budget_s"],
                         "wall_s": r["wall_s"], "config": config, "exports": exports, "variants": variants,
                         **({"traceback": fatal["traceback"]} if fatal else {})})
    return {"format": REPORT_FORMAT, "version": 1, "mode": "gpu" if gpu else "cpu-smoke",
            "started_utc": started.strftime("%Y-%m-%d %H:%M:%S"), "wall_s": round(wall_s, 1), "deadline_s": deadline,
            "machine": machine, "sections": sections}


def write(report: dict, out_dir: Path) -> dict[str, Path]:
    gpu = (report["machine"].get("torch") or {}).get("gpu") if report["mode"] == "gpu" else None
    name = "gpu_" + (re.sub(r"[^a-z0-9]+", "-", gpu.lower()).strip("-") if gpu else "cpu-smoke")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{name}.json", "md": out_dir / f"{name}.md"}
    paths["json"].write_text(json.dumps(report, indent=2, default=str) + "\n")
    paths["md"].write_text(markdown(report))
    return paths


def _f(v, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _machine_lines(m: dict) -> list[str]:
    t = m.get("torch") or {}
    ort, trt = m.get("onnxruntime") or {}, m.get("tensorrt") or {}
    gpu = (f"{t['gpu']} (compute {t['compute_capability']}, {t['memory_gb']} GiB, {t['sms']} SMs; "
           f"nvidia-smi: {m.get('nvidia_smi')}; driver CUDA {m.get('driver_cuda')})" if t.get("gpu") else
           f"none visible to torch (nvidia-smi: {m.get('nvidia_smi')})")
    return [f"- GPU: {gpu}",
            f"- CPU: {m.get('cpu')}, {m.get('cores')} cores; {m.get('os')}; Python {m.get('python')}",
            f"- torch {t.get('version', t.get('error'))} (CUDA build {t.get('cuda_build')}, cuDNN {t.get('cudnn')}, "
            f"TF32 matmul {t.get('tf32_matmul')})",
            f"- onnxruntime: {ort.get('version', '')} {ort.get('providers', ort.get('error'))}",
            f"- TensorRT: {trt.get('version', trt.get('error'))}",
            f"- packages: {', '.join(f'{k} {v}' for k, v in (m.get('versions') or {}).items())}; "
            f"lerobot-edge commit {m.get('lerobot_edge_commit')}"]


def _section_line(s: dict) -> str:
    c = s["config"]
    if "policy" in c:
        what = f"{c['what']}; {c['params'] / 1e6:.1f} M parameters (built in {c['build_s']} s)"
        what += " — tiny config for the smoke run" if c.get("tiny") else ""
    else:
        ex = "; ".join(f"{e['model']} exported by {e['exporter']} in {e['seconds']} s" for e in s.get("exports", []))
        what = f"{c['library']} {c['version']}, providers {c.get('providers')}; {ex}"
    return f"- {s['section']} ({s['wall_s']} s of {s['budget_s']} s): {what}"


def markdown(r: dict) -> str:
    m, gpu = r["machine"], r["mode"] == "gpu"
    title = (m.get("torch") or {}).get("gpu") if gpu else "CPU smoke run (no GPU section ran)"
    out = [f"# lerobot-edge GPU check: {title}", "",
           f"Run {r['started_utc']} UTC, {r['wall_s']} s (deadline {r['deadline_s']:.0f} s), mode `{r['mode']}`.", ""]
    out += _machine_lines(m) + [""]
    if not gpu:
        out += ["No CUDA device here (or --cpu-smoke): the GPU figures are skipped with the reason below; tiny "
                "configs ran on the CPU with one thread only to check the script end to end. Their latencies are "
                "not measurements of anything.", ""]
    out += ["Chunk latency = one whole action chunk (vision, prefix / encoder, every denoise step, sampler update), "
            "torch.cuda.synchronize() around each; random weights at LeRobot's sizes (timing does not depend on "
            "trained weights). `vs eager fp32`: chunk p50 speed-up; `max |Δ|`: largest difference of the chunk "
            "(normalized units) from eager fp32 on the same inputs and noise.", "",
            "| section | variant | status | chunk p50 ms | p99 ms | n | first call s | vs eager fp32 | max abs Δ | "
            "peak GPU GiB | note |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for s in r["sections"]:
        if s["status"] not in ("ok", "skipped"):
            notes.append(f"- {s['section']}: {s['status']}: {(s.get('reason') or 'see the variants')[:400]}")
        if not s.get("variants"):
            reason = s.get("reason") or ""
            out.append(f"| {s['section']} | - | {s['status']} | | | | | | | | {reason[:160]} |")
            continue
        base = next((v.get("p50_ms") for v in s["variants"] if v.get("variant") == "eager/fp32"
                     and v["status"] == "ok"), None)
        for v in s["variants"]:
            label = f"{v['model']} {v['variant']}" if "model" in v else v["variant"]
            ok = v["status"] == "ok"
            speed = f"x{base / v['p50_ms']:.2f}" if ok and base and "model" not in v else ""
            delta = v.get("max_abs_vs_eager_fp32", v.get("max_abs_vs_torch_fp32"))
            first = v.get("first_call_s", v.get("load_s"))
            out.append(f"| {s['section']} | {label} | {v['status']} | {_f(v.get('p50_ms'))} | {_f(v.get('p99_ms'))} | "
                       f"{_f(v.get('n'))} | {_f(first)} | {speed} | {'' if delta is None else f'{delta:.2e}'} | "
                       f"{_f(v.get('peak_gpu_gb'), 2)} | {(v.get('reason') or '')[:160]} |")
    out += ["", "Sections:"] + [_section_line(s) for s in r["sections"] if s.get("config")]
    if notes:
        out += ["", "Sections that did not finish cleanly:"] + notes
    return "\n".join(out) + "\n"
