"""The crafted-file corpus, beyond tests/test_hostile.py and tests/test_bundle.py: every attack the hardening
issue lists on bundles (paths and symlinks that leave the bundle, checksums, missing/extra/duplicate graphs,
graphs whose IO disagrees with the manifest, ONNX external data outside the bundle or past its end, future
schemas, truncated and oversized files, manifests that are not JSON, too deep, or hold NaN; pickles; bad stats)
and on LeRobot checkpoints (config shapes vs weights, NaN/inf stats, missing processor files, state-file names
with a path, pickles, malformed processor JSON). Each gets its typed error naming the problem; the table of
attacks is what the closing note of the issue lists."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from lerobot_edge.testing.checkpoints.act import TINY_ACT, write_act_checkpoint
from safetensors.numpy import load_file, save_file
from test_hostile import edit_manifest, reseal

from lerobot_edge import load_policy
from lerobot_edge.bundle import Bundle
from lerobot_edge.checkpoint import load_checkpoint
from lerobot_edge.errors import BundleError, CheckpointError
from lerobot_edge.policies import build_plan

onnx = pytest.importorskip("onnx", reason="crafting graph files needs the onnx package")


# ------------------------------------------------------------------------------------------------- bundles


def _stats(b: Path, fn) -> None:
    s = load_file(str(b / "stats.safetensors"))
    fn(s)
    save_file(s, str(b / "stats.safetensors"))
    reseal(b)


def _symlink_out(b: Path, rel: str) -> None:
    outside = b.parent / f"outside_{rel.replace('/', '_')}"
    shutil.move(str(b / rel), outside)
    (b / rel).symlink_to(outside)


def _onnx(b: Path, fn) -> None:
    m = onnx.load(str(b / "act.onnx"), load_external_data=False)
    fn(m)
    (b / "act.onnx").write_bytes(m.SerializeToString())
    reseal(b)


def _external(key: str, value: str):
    def fn(m):
        for t in m.graph.initializer:
            for e in t.external_data:
                if e.key == key:
                    e.value = value
    return fn


def _custom_op(m) -> None:
    m.graph.node.append(onnx.helper.make_node("Exfiltrate", ["observation.state"], ["leak"], domain="com.evil"))
    m.opset_import.append(onnx.helper.make_opsetid("com.evil", 1))


def _rename_output(m) -> None:
    m.graph.output[0].name = "evil"
    for n in m.graph.node:
        for i, o in enumerate(n.output):
            if o == "action":
                n.output[i] = "evil"


def _write(rel: str, data: bytes, seal: bool = True):
    def fn(b: Path):
        (b / rel).write_bytes(data)
        if seal:
            reseal(b)
    return fn


def _truncate(rel: str, n: int):
    return lambda b: (_write(rel, (b / rel).read_bytes()[:n])(b))


def _append(rel: str, n: int):
    return lambda b: (_write(rel, (b / rel).read_bytes() + b"\0" * n)(b))


def _extra_graph(m: dict) -> None:
    m["graphs"].append({**json.loads(json.dumps(m["graphs"][0])), "name": "exfiltrate"})


def _pickled_validation(b: Path) -> None:
    (b / "validation").mkdir(exist_ok=True)
    np.savez(b / "validation" / "act.npz", x=np.array([{"os.system": "rm -rf /"}], dtype=object), allow_pickle=True)
    edit_manifest(b, lambda m: m["files"]["common"].append("validation/act.npz"))
    with open(b / "checksums.sha256", "a") as f:
        from lerobot_edge.bundle import sha256_file

        f.write(f"{sha256_file(b / 'validation' / 'act.npz')}  validation/act.npz\n")
    reseal(b)


MANIFEST = "manifest.json"
BUNDLE_ATTACKS = {
    # paths and links
    "manifest symlinked outside": (lambda b: _symlink_out(b, MANIFEST), "resolves outside the bundle"),
    "checksums symlinked outside": (lambda b: _symlink_out(b, "checksums.sha256"), "resolves outside the bundle"),
    "stats symlinked outside": (lambda b: _symlink_out(b, "stats.safetensors"), "resolves outside the bundle"),
    "external data symlinked outside": (lambda b: _symlink_out(b, "act.onnx.data"), "resolves outside the bundle"),
    "graph file with a NUL byte": (lambda b: edit_manifest(b, lambda m: m["graphs"][0].update(file="act.onnx\0x")),
                                   "expected a relative path"),
    "graph file with a backslash": (lambda b: edit_manifest(b, lambda m: m["graphs"][0].update(file="..\\act.onnx")),
                                    "expected a relative path"),
    "graph file under ~": (lambda b: edit_manifest(b, lambda m: m["graphs"][0].update(file="~/act.onnx")),
                           "escapes the bundle"),
    "artefact path escaping": (lambda b: edit_manifest(b, lambda m: m["graphs"][0].update(
        artifacts={"openvino": "../../x.xml"})), "escapes the bundle"),
    "checksums line escaping": (lambda b: _write("checksums.sha256", (b / "checksums.sha256").read_bytes()
                                                 + b"0" * 64 + b"  ../x\n", seal=False)(b), "escapes the bundle"),
    "external data at an absolute path": (lambda b: _onnx(b, _external("location", "/etc/passwd")),
                                          "points outside the bundle"),
    # graphs and their IO
    "extra graph": (lambda b: edit_manifest(b, _extra_graph), "never runs"),
    "duplicate graph name": (lambda b: edit_manifest(b, lambda m: m["graphs"].append(m["graphs"][0])),
                             "duplicate graph name"),
    "graph file outside every file set": (lambda b: edit_manifest(b, lambda m: m["files"].update(onnx=[])),
                                          "is not a checksummed file"),
    "graph output renamed in the ONNX": (lambda b: _onnx(b, _rename_output), "outputs of act.onnx are"),
    "graph with a custom-op domain": (lambda b: _onnx(b, _custom_op), "operator domain\\(s\\) \\['com.evil'\\]"),
    "input dtype disagrees": (lambda b: edit_manifest(b, lambda m: m["graphs"][0]["inputs"][0].update(
        dtype="int64")), "has dtype float32, the manifest says int64"),
    "manifest lists an input the graph lacks": (lambda b: edit_manifest(b, lambda m: m["graphs"][0]["inputs"].append(
        {"name": "x", "shape": [1], "dtype": "float32"})), "inputs of act.onnx are"),
    "action size disagrees with the stats": (lambda b: edit_manifest(b, lambda m: m["action"].update(shape=[9])),
                                             "does not fit"),
    # truncated and oversized files
    "external data truncated, resealed": (_truncate("act.onnx.data", 1000), "truncated"),
    "external data oversized, resealed": (_append("act.onnx.data", 1 << 20), "oversized"),
    "external data offset past the end": (lambda b: _onnx(b, _external("offset", str(10**12))), "truncated"),
    "ONNX truncated, resealed": (_truncate("act.onnx", 200), "not a readable ONNX file"),
    "stats truncated, resealed": (_truncate("stats.safetensors", 100), "not a readable safetensors file"),
    "stats is a FIFO": (lambda b: ((b / "stats.safetensors").unlink(), os.mkfifo(b / "stats.safetensors")),
                        "missing from"),
    # manifests that are not JSON, too deep, or from the future
    "manifest not UTF-8": (_write(MANIFEST, b"\xff\xfe{}", seal=False), "not valid JSON"),
    "manifest nested 100k deep": (_write(MANIFEST, b"[" * 100_000 + b"]" * 100_000), "not valid JSON"),
    "manifest with NaN": (lambda b: _write(MANIFEST, (b / MANIFEST).read_bytes().replace(b'"opset": 18',
                                                                                          b'"opset": NaN'))(b),
                          "not valid JSON"),
    "manifest is a JSON list": (_write(MANIFEST, b"[]"), "not a lerobot-edge manifest"),
    "schema 1.1 (newer minor)": (lambda b: edit_manifest(b, lambda m: m.update(schema_version=[1, 1])),
                                 "newer than this lerobot-edge"),
    "schema version of booleans": (lambda b: edit_manifest(b, lambda m: m.update(schema_version=[True, 0])),
                                   "expected int, got bool"),
    "unknown target": (lambda b: edit_manifest(b, lambda m: m.update(target="evil")), "target 'evil'"),
    "unknown precision": (lambda b: edit_manifest(b, lambda m: m.update(precision="fp3")), "precision 'fp3'"),
    "unknown observation kind": (lambda b: edit_manifest(b, lambda m: m["observations"]["observation.state"].update(
        kind="evil")), "kind: expected one of"),
    "n_action_steps out of range": (lambda b: edit_manifest(b, lambda m: m["runtime"].update(n_action_steps=10**9)),
                                    "malformed manifest runtime settings"),
    # checksums file
    "checksums not UTF-8": (_write("checksums.sha256", b"\xff\xfe\x00" * 10, seal=False), "not UTF-8"),
    # stats and pickles
    "stats is a pickle": (_write("stats.safetensors", pickle.dumps({"action.std": 1})),
                          "not a readable safetensors file"),
    "stats with NaN": (lambda b: _stats(b, lambda s: s["action.std"].__setitem__(0, np.nan)), "contains NaN or inf"),
    "stats with inf": (lambda b: _stats(b, lambda s: s["observation.state.mean"].__setitem__(0, np.inf)),
                       "contains NaN or inf"),
    "stats of the wrong shape": (lambda b: _stats(b, lambda s: s.update({"action.std": np.ones(7, np.float32)})),
                                 "does not fit the feature's shape"),
    "stats of integers": (lambda b: _stats(b, lambda s: s.update({"action.std": np.ones(4, np.int32)})),
                          "float tensor"),
}


@pytest.fixture
def bundle(act_tiny_bundle, tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(act_tiny_bundle, dst)
    return dst


@pytest.mark.parametrize("attack", list(BUNDLE_ATTACKS))
def test_crafted_bundle_is_refused(bundle, attack):
    craft, message = BUNDLE_ATTACKS[attack]
    craft(bundle)
    with pytest.raises(BundleError, match=message):
        load_policy(bundle)


def test_a_pickled_validation_array_is_never_unpickled(bundle):
    _pickled_validation(bundle)
    b = Bundle.open(bundle, "onnxruntime")
    with pytest.raises(BundleError, match="without pickles"):
        b.validation_data("act")


def test_a_bad_tokenizer_file_is_a_bundle_error(tmp_path):
    from lerobot_edge.runtime.policies.vla_inputs import Tokenizer

    (tmp_path / "tokenizer.json").write_bytes(pickle.dumps("not a tokenizer"))
    with pytest.raises(BundleError, match="not a readable tokenizer.json"):
        Tokenizer(tmp_path / "tokenizer.json", 16, 0)


# ------------------------------------------------------------------------------------------------- checkpoints


def _cfg(fn):
    def craft(d: Path):
        c = json.loads((d / "config.json").read_text())
        fn(c)
        (d / "config.json").write_text(json.dumps(c))
    return craft


def _processor(name: str, fn):
    def craft(d: Path):
        c = json.loads((d / name).read_text())
        fn(c)
        (d / name).write_text(json.dumps(c))
    return craft


def _state_file(prefix: str, fn):
    def craft(d: Path):
        f = next(d.glob(f"{prefix}_step_*.safetensors"))
        s = load_file(str(f))
        fn(s)
        save_file(s, str(f))
    return craft


def _weights(fn):
    def craft(d: Path):
        w = load_file(str(d / "model.safetensors"))
        save_file(fn(w), str(d / "model.safetensors"))
    return craft


PRE, POST = "policy_preprocessor", "policy_postprocessor"
CHECKPOINT_ATTACKS = {
    "config state shape vs weights": (_cfg(lambda c: c["input_features"]["observation.state"].update(shape=[7])),
                                      "observation.state.mean: stats of shape \\[6\\] do not fit"),
    "config dim_model vs weights": (_cfg(lambda c: c.update(dim_model=48)), "weights do not match the config"),
    "config chunk_size a string": (_cfg(lambda c: c.update(chunk_size="ten")), "chunk_size must be a positive"),
    "config negative shape": (_cfg(lambda c: c["input_features"]["observation.state"].update(shape=[-6])),
                              "must be positive"),
    "config features a list": (_cfg(lambda c: c.update(input_features=[1, 2])), "expected an object"),
    "config NaN": (lambda d: (d / "config.json").write_text((d / "config.json").read_text().replace(
        '"chunk_size": 10', '"chunk_size": NaN')), "not valid JSON"),
    "config nested 100k deep": (lambda d: (d / "config.json").write_text("[" * 100_000 + "]" * 100_000),
                                "not valid JSON"),
    "stats inf": (_state_file(PRE, lambda s: s["observation.state.std"].__setitem__(0, np.inf)), "NaN or inf"),
    "stats of the wrong shape": (_state_file(PRE, lambda s: s.update({"observation.state.mean": np.zeros(9)})),
                                 "do not fit the feature's shape"),
    "preprocessor file missing": (lambda d: (d / f"{PRE}.json").unlink(), f"{PRE}.json is missing"),
    "both processor files missing": (lambda d: ((d / f"{PRE}.json").unlink(), (d / f"{POST}.json").unlink()),
                                     "no normalization stats found"),
    "state file missing": (lambda d: [f.unlink() for f in d.glob(f"{PRE}_step_*.safetensors")], "is missing from"),
    "state file an absolute path": (_processor(f"{PRE}.json", lambda c: c["steps"][-1].update(
        state_file="/etc/stats.safetensors")), "must be a plain file name"),
    "state file a pickle name": (_processor(f"{PRE}.json", lambda c: c["steps"][-1].update(state_file="stats.pkl")),
                                 "must be a plain file name"),
    "state file holding a pickle": (lambda d: [f.write_bytes(pickle.dumps({"a": 1}))
                                               for f in d.glob(f"{PRE}_step_*.safetensors")],
                                    "cannot read safetensors stats"),
    "processor steps not a list": (_processor(f"{PRE}.json", lambda c: c.update(steps={"a": 1})),
                                   "must be a list of objects"),
    "processor norm_map a list": (_processor(f"{PRE}.json", lambda c: c["steps"][-1]["config"].update(norm_map=["x"])),
                                  "norm_map must map"),
    "only pytorch_model.bin (pickle)": (lambda d: (d / "model.safetensors").rename(d / "pytorch_model.bin"),
                                        "only safetensors weights are read"),
    "model.safetensors holding a pickle": (lambda d: (d / "model.safetensors").write_bytes(pickle.dumps({"w": 1})),
                                           "cannot read safetensors weights"),
    "weights truncated": (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()
                                                                          [:5000]), "cannot read safetensors weights"),
    "weights with NaN": (_weights(lambda w: {k: np.full_like(v, np.nan) if v.dtype.kind == "f" else v
                                             for k, v in w.items()}), "contain NaN or inf"),
}


@pytest.fixture(scope="module")
def act_ckpt(tmp_path_factory):
    return write_act_checkpoint(tmp_path_factory.mktemp("hostile_ckpt") / "c", with_type=True, **TINY_ACT)


@pytest.mark.parametrize("attack", list(CHECKPOINT_ATTACKS))
def test_crafted_checkpoint_is_refused(act_ckpt, tmp_path, attack):
    craft, message = CHECKPOINT_ATTACKS[attack]
    d = tmp_path / "c"
    shutil.copytree(act_ckpt, d)
    craft(d)
    with pytest.raises(CheckpointError, match=message):
        build_plan(load_checkpoint(d))                    # reads config, stats and the weights


def test_remote_code_in_a_checkpoint_is_never_run(act_ckpt, tmp_path):
    """auto_map / trust_remote_code in config.json and a Python file beside the weights: export reads JSON and
    safetensors only, so nothing is imported or executed."""
    d = tmp_path / "c"
    shutil.copytree(act_ckpt, d)
    marker = tmp_path / "pwned"
    (d / "evil_policy.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    _cfg(lambda c: c.update(trust_remote_code=True, auto_map={"AutoPolicy": "evil_policy.Policy"}))(d)
    build_plan(load_checkpoint(d))                        # everything export reads from a checkpoint
    assert not marker.exists() and "evil_policy" not in sys.modules


def test_io_dtype_disagreement_is_refused_by_openvino_too(bundle):
    pytest.importorskip("openvino", reason="pip install 'lerobot-edge[openvino]'")
    edit_manifest(bundle, lambda m: m["graphs"][0]["inputs"][0].update(dtype="int64"))
    with pytest.raises(BundleError, match="has dtype float32, the manifest says int64"):
        load_policy(bundle, "openvino")


def test_a_vla_reads_only_checksummed_runtime_files(request, tmp_path):
    """A manifest pointing the tokenizer (or the embedding table) at a file of the bundle directory that no
    checksum covers is refused: with a pinned checksums.sha256 nothing unverified is ever read."""
    import tiny_zoo

    b = tmp_path / "b"
    shutil.copytree(tiny_zoo.tiny_bundle("pi0", request), b)
    shutil.copy(b / "tokenizer.json", b / "unverified.json")
    edit_manifest(b, lambda m: m["runtime"]["tokenizer"].update(file="unverified.json"))
    with pytest.raises(BundleError, match="unverified.json: not a checksummed file"):
        tiny_zoo.load(b)
