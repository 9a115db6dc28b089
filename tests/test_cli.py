"""The CLI as a user runs it: real subprocesses, exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
import subprocess
import sys

from lerobot_edge.testing.checkpoints.act import TINY_ACT, write_act_checkpoint


def cli(*args, timeout=300, cwd=None):
    return subprocess.run([sys.executable, "-m", "lerobot_edge", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def test_export_info_validate(act_tiny_checkpoint, tmp_path):
    out = tmp_path / "bundle"
    r = cli("export", act_tiny_checkpoint, "--target", "onnx", "--output", out, "--policy-type", "act")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(out)
    assert "tracing graph 'act'" in r.stderr and "validating" in r.stderr
    r = cli("info", out)
    assert r.returncode == 0 and "validation  passed" in r.stdout and "observation.images.top" in r.stdout
    info = json.loads(cli("info", out, "--json").stdout)
    assert info["policy"] == "act"
    r = cli("validate", out, "--against", act_tiny_checkpoint)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok")
    # the same output again is refused without --overwrite
    r = cli("export", act_tiny_checkpoint, "-o", out, "--policy-type", "act")
    assert r.returncode == 2 and "--overwrite" in r.stderr


def test_bad_input_exits_2_with_one_line(tmp_path):
    d = write_act_checkpoint(tmp_path / "c", **TINY_ACT)
    r = cli("export", d, "-o", tmp_path / "b")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "--policy-type" in r.stderr
    r = cli("export", d, "-o", tmp_path / "b", "--policy-type", "act", "--opset", "17")
    assert r.returncode == 2 and "opset" in r.stderr
    r = cli("info", tmp_path)
    assert r.returncode == 2 and "not a bundle" in r.stderr


def test_validation_failure_exits_1(act_tiny_checkpoint, act_tiny_bundle, tmp_path):
    other = write_act_checkpoint(tmp_path / "other", seed=7, **TINY_ACT)  # same shapes, other weights
    r = cli("validate", act_tiny_bundle, "--against", other, "--policy-type", "act")
    assert r.returncode == 1
    assert "FAIL act.action" in r.stderr


def test_export_without_output_writes_a_default_dir_named_from_the_source(act_tiny_checkpoint, tmp_path):
    """The project card's command as typed: `lerobot-edge export SOURCE --target trt` -> ./<name>-trt/."""
    r = cli("export", act_tiny_checkpoint, "--target", "trt", "--policy-type", "act", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / f"{act_tiny_checkpoint.name}-trt"
    assert r.stdout.strip() == out.name and f"bundle written to {out.name}/" in r.stderr
    assert (out / "manifest.json").is_file() and (out / "trt" / "act.plan.json").is_file()
    assert json.loads(cli("info", out, "--json").stdout)["policy"] == "act"
    # an existing default dir is refused like an existing --output, naming it
    r = cli("export", act_tiny_checkpoint, "--target", "trt", "--policy-type", "act", cwd=tmp_path)
    assert r.returncode == 2 and f"{out.name}: already exists" in r.stderr and "--overwrite" in r.stderr
    assert "Traceback" not in r.stderr
