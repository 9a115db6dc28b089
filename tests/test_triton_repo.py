"""`lerobot-edge triton`: the model repository is what Triton reads. Every config.pbtxt parses strictly as
Triton's ModelConfig protobuf (tritonclient's model_config_pb2; unknown fields are errors), names, dtypes and
dims follow the manifest, and each model's files are the bundle's own. No Triton server is needed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tiny_zoo

pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2", reason="tritonclient[grpc] is not installed")
text_format = pytest.importorskip("google.protobuf.text_format")
ROOT = Path(__file__).resolve().parents[1]


def _config(path: Path):
    cfg = pb2.ModelConfig()
    text_format.Parse(path.read_text(), cfg)     # strict: an unknown field or a bad enum raises ParseError
    return cfg


def _write(bundle, repo, *args):
    r = subprocess.run([sys.executable, "-m", "lerobot_edge", "triton", str(bundle), str(repo), *args],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("name", ["act", "diffusion", "pi0"])
def test_repository_configs_follow_the_manifest(name, request, tmp_path):
    bundle = tiny_zoo.tiny_bundle(name, request)
    manifest = json.loads((bundle / "manifest.json").read_text())
    out = _write(bundle, tmp_path / "repo", "--name", name, "--max-batch", "4", "--instances", "2")
    assert "tritonserver --model-repository" in out
    models = {p.parent.name: _config(p) for p in (tmp_path / "repo").glob("*/config.pbtxt")}
    assert set(models) == {name, name + "_info", *(f"{name}_{g['name']}" for g in manifest["graphs"])}
    for g in manifest["graphs"]:
        cfg = models[f"{name}_{g['name']}"]
        assert cfg.name == f"{name}_{g['name']}" and cfg.backend == "onnxruntime_onnx"
        batch = cfg.max_batch_size > 0
        assert batch == all(isinstance(io["shape"][0], str) and not any(isinstance(d, str) for d in io["shape"][1:])
                            for io in [*g["inputs"], *g["outputs"]])
        assert cfg.HasField("dynamic_batching") == batch
        for spec, got in [*zip(g["inputs"], cfg.input), *zip(g["outputs"], cfg.output)]:
            want = [-1 if isinstance(d, str) else d for d in (spec["shape"][1:] if batch else spec["shape"])]
            assert got.name == spec["name"] and got.data_type == pb2.TYPE_FP32
            assert list(got.dims) == (want or [1]) and (not want) == got.HasField("reshape")
        assert cfg.instance_group[0].count == 2 and cfg.instance_group[0].kind == pb2.ModelInstanceGroup.KIND_CPU
        version = tmp_path / "repo" / cfg.name / "1"
        assert (version / cfg.default_model_filename).is_file()
        for f in [f for f in manifest["files"]["onnx"] if f.startswith(g["file"])]:
            assert _sha(version / Path(f).name) == _sha(bundle / f)       # the bundle's own files
    chunk = models[name]
    assert chunk.backend == "python" and chunk.max_batch_size == 4
    inputs = {i.name: i for i in chunk.input}
    assert set(manifest["observations"]) <= set(inputs)
    for key, spec in manifest["observations"].items():
        kind = pb2.TYPE_UINT8 if spec["kind"] == "image" else pb2.TYPE_FP32
        assert inputs[key].data_type == kind and not inputs[key].optional
    assert all(inputs[k].optional for k in inputs if k not in manifest["observations"])
    assert [o.name for o in chunk.output] == ["action", "error"]
    assert chunk.parameters["graph_model_prefix"].string_value == f"{name}_"
    assert models[name + "_info"].parameters["bundle_model"].string_value == name
    shim = (tmp_path / "repo" / name / "1" / "model.py").read_text()
    assert "lerobot_edge.serving.triton_python import ChunkModel as TritonPythonModel" in shim
    copied = tmp_path / "repo" / name / "1" / "bundle"
    assert json.loads((copied / "manifest.json").read_text()) == manifest
    from lerobot_edge.bundle import Bundle

    Bundle.open(copied, verify=False).verify(["common"])      # what ChunkModel.initialize checks


def test_pi0_kv_cache_graphs_are_not_batched_by_triton(request, tmp_path):
    """pi0's prefix/denoise carry the KV cache with the batch axis second: Triton cannot batch them, so they
    are max_batch_size 0 with full dims; the vision graph (batch first) batches."""
    bundle = tiny_zoo.tiny_bundle("pi0", request)
    _write(bundle, tmp_path / "r", "--name", "p")
    sizes = {p.parent.name: _config(p).max_batch_size for p in (tmp_path / "r").glob("*/config.pbtxt")}
    assert sizes == {"p": 8, "p_info": 0, "p_vision": 8, "p_prefix": 0, "p_denoise": 0}


def test_engines_become_tensorrt_plans_and_bad_arguments_are_refused(act_tiny_bundle, tmp_path):
    from lerobot_edge.errors import BundleError
    from lerobot_edge.serving.triton_repo import write_model_repository

    engine = tmp_path / "act.engine"
    engine.write_bytes(b"an engine built on the serving GPU")
    repo = write_model_repository(act_tiny_bundle, tmp_path / "r", name="a", engines={"act": engine}, gpu=True)
    cfg = _config(repo / "a_act" / "config.pbtxt")
    assert cfg.backend == "tensorrt_plan" and cfg.default_model_filename == "model.plan"
    assert cfg.instance_group[0].kind == pb2.ModelInstanceGroup.KIND_GPU
    assert (repo / "a_act" / "1" / "model.plan").read_bytes() == engine.read_bytes()
    with pytest.raises(FileExistsError):
        write_model_repository(act_tiny_bundle, repo)
    with pytest.raises(BundleError, match="nope"):
        write_model_repository(act_tiny_bundle, tmp_path / "r2", engines={"nope": engine})


def test_python_models_resolve():
    from lerobot_edge.serving import triton_python

    for cls in (triton_python.ChunkModel, triton_python.InfoModel):
        assert callable(cls.initialize) and callable(cls.execute) and callable(cls.finalize)


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()
