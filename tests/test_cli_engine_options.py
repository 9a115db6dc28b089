"""`--device` and `--backend-options JSON` on `bench`, `run` and `selftest` reach load_policy: real subprocesses
on CPU (onnxruntime's CPU provider; the CUDA request is refused with exit 3 where onnxruntime has no CUDA)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lerobot_edge.bench.options import engine_options, per_backend


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "lerobot_edge", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_bench_passes_backend_options_and_records_them(act_tiny_bundle, tmp_path):
    out = tmp_path / "bench.json"
    r = cli("bench", act_tiny_bundle, "--backends", "onnxruntime", "--iterations", 2, "--warmup", 1, "-q",
            "--backend-options", '{"threads": 1, "io_binding": true}', "--json", out)
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    assert report["config"]["backend_options"] == {"threads": 1, "io_binding": True}
    (row,) = report["results"]
    assert row["skipped"] is None and row["stages"]["total"]["n"] == 2


def test_bench_refuses_a_bad_key_before_any_work(act_tiny_bundle):
    r = cli("bench", act_tiny_bundle, "--backends", "onnxruntime,openvino", "--backend-options", '{"thread": 1}')
    assert r.returncode == 2 and "'thread'" in r.stderr and "onnxruntime" in r.stderr, r.stderr
    r = cli("bench", act_tiny_bundle, "--backends", "onnxruntime", "--backend-options", '{"openvino": {}}')
    assert r.returncode == 2 and "does not benchmark" in r.stderr, r.stderr
    r = cli("bench", act_tiny_bundle, "--backend-options", "[1]")
    assert r.returncode == 2 and "expected a JSON object" in r.stderr, r.stderr
    r = cli("bench", act_tiny_bundle, "--backend-options", "{threads: 1}")
    assert r.returncode == 2 and "not valid JSON" in r.stderr, r.stderr


def test_bench_options_per_backend_or_shared():
    shared = {"threads": 2}
    assert engine_options("openvino", shared, "GPU") == {"threads": 2, "device": "GPU"}
    keyed = {"onnxruntime": {"device": "cuda", "cuda_graph": True}, "openvino": {"device": "GPU"}}
    assert per_backend(keyed) and not per_backend(shared)
    assert engine_options("onnxruntime", keyed, "cuda:1", 4) == {"device": "cuda", "cuda_graph": True, "threads": 4}
    assert engine_options("tensorrt", keyed, "cuda:1") == {"device": "cuda:1"}
    with pytest.raises(ValueError, match="mixes backend names"):
        per_backend({"onnxruntime": {}, "threads": 1})


def test_run_passes_backend_options(act_tiny_bundle, tmp_path):
    report = tmp_path / "run.json"
    r = cli("run", act_tiny_bundle, "--duration", 1, "--fps", 10, "-q", "--report", report,
            "--backend-options", '{"threads": 1, "io_binding": true}')
    assert r.returncode == 0, r.stderr
    assert len(json.loads(report.read_text())["ticks"]) >= 5
    r = cli("run", act_tiny_bundle, "--duration", 1, "-q", "--backend-options", '{"cuda_graphs": true}')
    assert r.returncode == 2 and "'cuda_graphs'" in r.stderr and "cuda_graph" in r.stderr, r.stderr


def test_selftest_takes_backend_options(act_tiny_bundle):
    r = cli("selftest", act_tiny_bundle, "--iterations", 2, "--backend-options", '{"threads": 1}')
    assert r.returncode == 0, r.stderr
    r = cli("selftest", act_tiny_bundle, "--backend-options", '{"cuda_graph": true}')
    assert r.returncode == 2 and "cuda_graph=true needs the CUDA or TensorRT provider" in r.stderr, r.stderr


def test_device_cuda_without_a_gpu_is_exit_3(act_tiny_bundle):
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime has the CUDA provider here: the request would run")
    r = cli("run", act_tiny_bundle, "--duration", 1, "-q", "--device", "cuda")
    assert r.returncode == 3 and "CUDAExecutionProvider" in r.stderr, r.stderr
