"""`lerobot-edge bench`: every figure present, JSON valid against the schema in the repo, plot written.
Only behaviour is asserted here; the numbers themselves belong to benchmarks/."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.resources import files

import jsonschema
import pytest

from lerobot_edge.bench import BenchConfig, run_bench
from lerobot_edge.bench.report import markdown, text_table
from lerobot_edge.bench.runner import control_rates


@pytest.fixture(scope="module")
def report(act_tiny_checkpoint, tmp_path_factory):
    cfg = BenchConfig(backends=("torch", "onnxruntime", "nosuch"), iterations=4, warmup=1, policy_type="act")
    return run_bench(act_tiny_checkpoint, cfg, workdir=tmp_path_factory.mktemp("bench"))


def test_report_matches_schema_and_has_every_stage(report):
    schema = json.loads(files("lerobot_edge.bench").joinpath("schema.json").read_text())
    jsonschema.validate(report, schema)
    by = {r["name"]: r for r in report["results"]}
    assert by["nosuch/fp32"]["skipped"]
    ort = by["onnxruntime/fp32"]
    assert set(ort["stages"]) == {"preprocess", "act", "sampler", "postprocess", "total"}
    assert ort["stages"]["total"]["n"] == 4 and ort["speedup_vs_torch"] > 0
    assert 0 < ort["roofline_fraction"] < 1.5 and report["flops_per_chunk"] > 0
    assert report["machine"]["gemm_peak_gflops"] > 0 and report["machine"]["cores"] >= 1
    assert "onnxruntime/fp32" in text_table(report) and markdown(report).count("\n|") >= 4
    # the host's share of a chunk (preprocess + sampler + postprocess over the engine calls), per variant
    for r in (ort, by["torch/fp32"]):
        assert 0 < r["host_share"] < 10 and set(r["host_stage_p50_ms"]) == {"preprocess", "sampler", "postprocess"}
    assert "host % of engine" in markdown(report)
    # the threads each variant ran with, in the machine record
    threads = report["machine"]["threads"]
    assert threads["torch/fp32"]["torch_num_threads"] >= 1
    assert threads["onnxruntime/fp32"]["graphs"]["act"]["allow_spinning"] is False
    bf16 = report["machine"]["bf16_gemm_peak_gflops"]
    assert bf16 is None or bf16 > 0


def test_control_rates():
    assert control_rates(100.0, 1.0, 50) == {"sync_hz": 10.0, "async_hz": 500.0}
    assert control_rates(100.0, 10.0, 50)["async_hz"] == 100.0  # the per-tick host cost caps it


def test_cli_writes_json_markdown_and_plot(act_tiny_bundle, tmp_path):
    r = subprocess.run([sys.executable, "-m", "lerobot_edge", "bench", str(act_tiny_bundle), "--backends",
                        "onnxruntime", "--iterations", "3", "--warmup", "1", "--json", str(tmp_path / "r.json"),
                        "--markdown", str(tmp_path / "r.md"), "--plot", str(tmp_path / "r.png")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "onnxruntime/fp32" in r.stdout
    assert json.loads((tmp_path / "r.json").read_text())["results"][0]["stages"]
    assert (tmp_path / "r.png").stat().st_size > 1000 and (tmp_path / "r.md").read_text().startswith("###")
