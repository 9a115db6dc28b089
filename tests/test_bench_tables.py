"""benchmarks/tables.py (`make bench-tables`) on the tiny ACT checkpoint, ONNX Runtime only, fp32 and bf16: the
README block is rewritten with a measured fp32 row (latency, ratio vs eager, accuracy from the manifest, host
share) and a bf16 row that names why it was not measured. Seconds; the real tables are the lead's to run."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import configs  # noqa: E402
import tables  # noqa: E402


def test_tables_quick_tiny_act(tmp_path, act_tiny_checkpoint, act_tiny_bundle):
    # the suite's tiny ACT checkpoint and bundle where tables.py looks for them (so nothing is exported again)
    shutil.copytree(act_tiny_checkpoint, tmp_path / "w" / "checkpoints" / "act_tiny")
    shutil.copytree(act_tiny_bundle, tmp_path / "w" / "bundles" / "act_tiny" / "onnx-fp32")
    readme = tmp_path / "README.md"
    readme.write_text(f"# Bench\n\nintro\n\n{tables.BEGIN}\nold table\n{tables.END}\n\nafter\n")
    argv = ["--policies", "act", "--tiny", "--quick", "--backends", "torch,onnxruntime", "--precisions",
            "fp32,bf16", "--out", str(tmp_path / "out"), "--readme", str(readme), "--workdir", str(tmp_path / "w")]
    assert tables.main(argv) == 0
    body = readme.read_text()
    assert body.startswith("# Bench\n\nintro") and body.rstrip().endswith("after") and "old table" not in body
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:3]): line for line in body.splitlines()
            if line.startswith("| act_tiny")}
    fp32 = rows[("act_tiny", "onnxruntime", "fp32")].split("|")
    assert float(fp32[4]) > 0 and "(torch)" in fp32[5] and float(fp32[6]) > 0.999   # p50, vs eager, cosine
    assert float(fp32[9]) >= 0                                                        # host % of engine
    assert "not measured" in rows[("act_tiny", "onnxruntime", "bf16")]
    assert ("act_tiny", "torch", "fp32") in rows and ("act_tiny", "torch", "bf16") not in rows
    report = json.loads((tmp_path / "out" / "act_tiny.json").read_text())
    assert report["machine"]["threads"] and "bf16_gemm_peak_gflops" in report["machine"]


def test_policy_selection():
    assert configs.select(["act"]) == ["act_aloha"] and configs.select(["act"], tiny=True) == ["act_tiny"]
    assert set(configs.select(None, tiny=True)) == set(configs.TINY)
    try:
        configs.select(["nosuch"])
    except ValueError as e:
        assert "nosuch" in str(e)
    else:
        raise AssertionError("an unknown policy type was accepted")


def test_machine_line_per_machine():
    """Configs merged from runs on two machines: one line each (probes as the range over the machine's runs),
    naming its configs and run dates."""
    def rep(cpu, when, gflops=1.0):
        return {"machine": {"cpu": cpu, "cores": 2, "cpu_flags": ["avx2"], "gemm_peak_gflops": gflops,
                            "versions": {}}, "run": {"started": when}}

    one = tables._machines({"a": rep("X", "2026-12-03T20:17+00:00"), "b": rep("X", "2026-12-03T20:20+00:00", 2.0)})
    assert len(one) == 1 and one[0].startswith("Machine: X, 2 cores") and "fp32 1-2 GFLOP/s" in one[0]
    two = tables._machines({"a": rep("X", "d1"), "b": rep("Y", "d2"), "c": {"machine": rep("X", "")["machine"]}})
    assert len(two) == 2 and "Configs: a (d1), c (date not recorded)" in two[0] and "b (d2)" in two[1]
