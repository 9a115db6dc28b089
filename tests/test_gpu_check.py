"""benchmarks/gpu_check.py, the one GPU check: here, without CUDA, a CPU smoke run (tiny config, every GPU variant
skipped with its reason) must finish and write its JSON + Markdown; the section planning and the report are
checked on crafted machine records and section results (a GPU, a CPU-only onnxruntime, a timeout, a crash)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import gpu_check  # noqa: E402
from gpu_check_report import assemble, markdown  # noqa: E402

GPU_MACHINE = {"torch": {"version": "2.11.0", "cuda_available": True, "gpu": "NVIDIA H200", "compute_capability": "9.0",
                         "memory_gb": 139.8, "sms": 132, "cuda_build": "13.0"},
               "onnxruntime": {"version": "1.23.0", "providers": ["CPUExecutionProvider"]},
               "tensorrt": {"error": "ModuleNotFoundError: No module named 'tensorrt'"}}


def test_cpu_smoke_run_writes_json_and_markdown(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--cpu-smoke", "--only",
                        "torch:smolvla_full", "--deadline", "150", "--out", str(tmp_path)], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_cpu-smoke.json").read_text())
    assert report["mode"] == "cpu-smoke" and report["machine"]["torch"]["version"]
    by = {s["section"]: s for s in report["sections"]}
    smol = by["torch:smolvla_full"]
    assert smol["status"] == "ok" and smol["config"]["tiny"], smol
    variants = {v["variant"]: v for v in smol["variants"]}
    assert variants["eager/fp32"]["status"] == "ok" and variants["eager/fp32"]["n"] >= 2
    assert variants["eager/bf16"]["status"] == "ok" and variants["eager/bf16"]["cosine_vs_eager_fp32"] > 0.9
    assert "no CUDA" in variants["compile/bf16"]["reason"]
    assert by["torch:pi0_full"]["reason"] == "not selected (--only)"
    md = (tmp_path / "gpu_cpu-smoke.md").read_text()
    assert "CPU smoke run" in md and "| torch:smolvla_full | eager/fp32 | ok |" in md


def test_sections_are_skipped_with_the_reason_from_the_machine_record():
    plan = {name: skip for name, _, skip in gpu_check.plan_sections(GPU_MACHINE, True, None)}
    assert plan["torch:pi0_full"] is None and plan["torch:act_aloha"] is None
    assert "has no CUDA provider" in plan["onnxruntime"] and "onnxruntime-gpu" in plan["onnxruntime"]
    assert "TensorRT does not import" in plan["tensorrt"]
    cpu_ort = {name: skip for name, _, skip in gpu_check.plan_sections(GPU_MACHINE, False, None)}
    assert cpu_ort["onnxruntime"] is None          # the smoke run exercises the section on the CPU provider
    no_torch = gpu_check.plan_sections({"torch": {"error": "ModuleNotFoundError: torch"}}, False, None)
    assert all("torch does not import" in skip for _, _, skip in no_torch)


def test_report_keeps_what_a_timed_out_or_crashed_section_finished():
    ok = {"kind": "variant", "variant": "eager/fp32", "status": "ok", "p50_ms": 40.0, "p99_ms": 45.0, "n": 50}
    config = {"kind": "config", "policy": "pi0_full", "what": "pi0", "params": 3.3e9, "build_s": 4.0, "tiny": False}
    results = [
        {"section": "torch:pi0_full", "budget_s": 150.0, "wall_s": 170.0, "ended": "timeout: killed after 170 s",
         "lines": [config, ok]},
        {"section": "torch:smolvla_full", "budget_s": 100.0, "wall_s": 3.0, "ended": "exit code 1: boom",
         "lines": [{"kind": "fatal", "reason": "RuntimeError: CUDA error: illegal memory access",
                    "traceback": "..."}]},
        {"section": "tensorrt", "status": "skipped", "reason": "TensorRT does not import"}]
    r = assemble(GPU_MACHINE, results, True, datetime.now(timezone.utc), 300.0, 450.0)
    by = {s["section"]: s for s in r["sections"]}
    assert by["torch:pi0_full"]["status"] == "timeout" and by["torch:pi0_full"]["variants"][0]["p50_ms"] == 40.0
    assert by["torch:smolvla_full"]["status"] == "error" and "illegal memory access" in by["torch:smolvla_full"]["reason"]
    md = markdown(r)
    assert "# lerobot-edge GPU check: NVIDIA H200" in md
    assert "| torch:pi0_full | eager/fp32 | ok | 40.0 | 45.0 | 50 |" in md
    assert "- torch:smolvla_full: error: RuntimeError: CUDA error: illegal memory access" in md


def test_engine_sections_bundle_runs_on_onnxruntime_and_carries_tensorrt_plans(tmp_path):
    """gpu_check_engines builds a Bundle over its exported files: ONNX Runtime loads it, and the TensorRT
    backend accepts its build plans up to the point where it needs TensorRT."""
    import numpy as np
    import onnx
    import pytest
    import torch
    from onnx import TensorProto, helper

    from gpu_check_engines import _bundle
    from lerobot_edge.backends import get_backend
    from lerobot_edge.backends.tensorrt_engines import graph_plan
    from lerobot_edge.errors import BackendUnavailableError

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(tmp_path / "g.onnx"))
    bundle, (spec,) = _bundle(tmp_path, {"g": (tmp_path / "g.onnx", {"x": torch.zeros(1, 4)})}, "fp16", trt=True)
    assert graph_plan(bundle, spec)[0]["precision"] == "fp16"
    ort = get_backend("onnxruntime")
    out = ort().load(spec, bundle, {"io_binding": True}).run({"x": np.array([[-1, 2, -3, 4]], np.float32)})
    np.testing.assert_array_equal(out["y"], [[0, 2, 0, 4]])
    trt = get_backend("tensorrt")
    if not trt.is_available():
        with pytest.raises(BackendUnavailableError, match="tensorrt"):
            trt().load(spec, bundle, {"cache_dir": str(tmp_path / "engines")})
