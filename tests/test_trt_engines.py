"""`lerobot-edge build` and prebuilt engine directories (backends/tensorrt_engines.py, engines.py): the key and
manifest logic with TensorRT absent (engine bytes are stand-ins; what is checked is which file loads, which
mismatch is named, and that a stale engine never loads). The real build runs where TensorRT and a GPU are."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lerobot_edge.backends.tensorrt import TensorRTBackend
from lerobot_edge.backends.tensorrt_engines import (DeviceFacts, engine_entry, engine_file_name, engine_key,
                                                    find_engine, graph_plan, new_manifest, write_manifest)
from lerobot_edge.bundle import Bundle
from lerobot_edge.errors import BundleError

ORIN = DeviceFacts("10.3.0", "12060", "Orin", "8.7")


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "lerobot_edge", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def _has_tensorrt() -> bool:
    return TensorRTBackend.is_available()


@pytest.fixture()
def engine_dir(act_trt_bundle, tmp_path):
    """An engine directory as `build --output` writes it, for an Orin with TensorRT 10.3."""
    b = Bundle.open(act_trt_bundle, "tensorrt")
    plan, _ = graph_plan(b, b.graphs["act"])
    d = tmp_path / "engines"
    d.mkdir()
    key = engine_key(plan, ORIN)
    path = d / engine_file_name("act", key)
    path.write_bytes(b"engine built on an orin")
    manifest = new_manifest(b, ORIN)
    manifest["engines"]["act"] = engine_entry("act", key, plan, path)
    write_manifest(d, manifest)
    return d, plan


def test_a_matching_engine_is_found(engine_dir):
    d, plan = engine_dir
    path, why = find_engine(d, "act", plan, ORIN)
    assert why is None and path.read_bytes() == b"engine built on an orin"


@pytest.mark.parametrize("here, named", [
    (DeviceFacts("10.7.0", "12060", "Orin", "8.7"), "TensorRT 10.3.0 (engines) vs 10.7.0 (here)"),
    (DeviceFacts("10.3.0", "12080", "Orin", "8.7"), "CUDA runtime 12060 (engines) vs 12080 (here)"),
    (DeviceFacts("10.3.0", "12060", "Thor", "11.0"), "GPU Orin (engines) vs Thor (here)"),
])
def test_a_device_mismatch_is_named_and_never_loads(engine_dir, here, named):
    d, plan = engine_dir
    path, why = find_engine(d, "act", plan, here)
    assert path is None and named in why
    with pytest.raises(BundleError, match=f"does not fit this device: .*{named.split(' (')[0]}"):
        find_engine(d, "act", plan, here, on_mismatch="refuse")


def test_another_plan_a_missing_graph_or_a_truncated_copy_never_loads(engine_dir):
    d, plan = engine_dir
    assert "another build plan" in find_engine(d, "act", {**plan, "precision": "fp32"}, ORIN)[1]
    assert "another ONNX graph" in find_engine(d, "act", {**plan, "onnx_sha256": "0" * 64}, ORIN)[1]
    assert "no engine for graph 'vision'" in find_engine(d, "vision", plan, ORIN)[1]
    engine = next(d.glob("*.engine"))
    engine.write_bytes(engine.read_bytes()[:-3])
    assert "does not match its recorded size/sha256" in find_engine(d, "act", plan, ORIN)[1]


def test_the_backend_prefers_the_engine_dir_then_the_user_cache(engine_dir, tmp_path, act_trt_bundle):
    """TensorRTBackend._engine, up to the point where it would build (TensorRT is never touched here)."""
    d, plan = engine_dir
    onnx = act_trt_bundle / "act.onnx"
    backend = TensorRTBackend()
    assert backend._engine(None, onnx, plan, ORIN, {"engine_dir": str(d)}) == b"engine built on an orin"
    thor = DeviceFacts("10.3.0", "12060", "Thor", "11.0")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / engine_file_name("act", engine_key(plan, thor))).write_bytes(b"engine built on this thor")
    named = r"GPU Orin \(engines\) vs Thor \(here\); compute capability 8.7 \(engines\) vs 11.0 \(here\)"
    with pytest.warns(UserWarning, match=named + "; using the per-user engine cache"):
        got = backend._engine(None, onnx, plan, thor, {"engine_dir": str(d), "cache_dir": str(cache)})
    assert got == b"engine built on this thor"
    with pytest.raises(BundleError, match="does not fit this device"):
        backend._engine(None, onnx, plan, thor, {"engine_dir": str(d), "engine_mismatch": "refuse"})


def test_engine_options_are_checked_before_tensorrt_is_needed(act_trt_bundle, tmp_path):
    from lerobot_edge import load_policy

    with pytest.raises(ValueError, match="engine_mismatch='never'"):
        load_policy(act_trt_bundle, backend_options={"engine_mismatch": "never"})
    with pytest.raises(BundleError, match="engine_dir=.*no such directory"):
        load_policy(act_trt_bundle, backend_options={"engine_dir": str(tmp_path / "nowhere")})
    with pytest.raises(ValueError, match="unknown to backend 'tensorrt'"):
        load_policy(act_trt_bundle, backend_options={"engines": str(tmp_path)})


def test_build_cli_refuses_bad_input_with_exit_2(act_tiny_bundle, act_trt_bundle, tmp_path):
    r = cli("build", act_tiny_bundle)
    assert r.returncode == 2 and "export with --target trt" in r.stderr, r.stderr
    r = cli("build", act_trt_bundle, "--device", "gpu0")
    assert r.returncode == 2 and "device='gpu0'" in r.stderr, r.stderr
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("not an engine")
    r = cli("build", act_trt_bundle, "--output", busy)
    assert r.returncode == 2 and "not an engine directory" in r.stderr, r.stderr


def test_build_without_tensorrt_is_exit_3(act_trt_bundle, tmp_path):
    if _has_tensorrt():
        pytest.skip("TensorRT is installed here: test_build_and_load_on_the_gpu covers it")
    r = cli("build", act_trt_bundle, "--output", tmp_path / "engines")
    assert r.returncode == 3 and "JetPack" in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.skipif(not _has_tensorrt(), reason="needs TensorRT, cuda-python and an NVIDIA GPU")
def test_build_and_load_on_the_gpu(act_trt_bundle, tmp_path):
    import numpy as np

    from lerobot_edge import load_policy
    from lerobot_edge.engines import build_engines
    from lerobot_edge.runtime.observations import random_observation

    out = tmp_path / "engines"
    first = build_engines(act_trt_bundle, out)
    assert [e["built"] for e in first["engines"]] == [True]
    assert [e["built"] for e in build_engines(act_trt_bundle, out)["engines"]] == [False]   # up to date
    p = load_policy(act_trt_bundle, backend_options={"engine_dir": str(out), "engine_mismatch": "refuse"})
    obs = random_observation(p.manifest["observations"], np.random.default_rng(0))
    assert np.isfinite(p.select_action(obs)).all()
