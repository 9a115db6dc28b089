"""The bundle refuses anything it did not write: tampering, future schemas, escaping paths, overwrites."""

from __future__ import annotations

import json
import shutil

import pytest

from lerobot_edge import load_policy
from lerobot_edge.bundle import Bundle, BundleWriter
from lerobot_edge.errors import BundleError, ValidationError
from lerobot_edge.inspect import bundle_info


@pytest.fixture
def bundle_copy(act_tiny_bundle, tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(act_tiny_bundle, dst)
    return dst


def _edit_manifest(path, fn):
    m = json.loads((path / "manifest.json").read_text())
    fn(m)
    (path / "manifest.json").write_text(json.dumps(m))


def test_manifest_records_what_the_runtime_needs(act_tiny_bundle):
    info = bundle_info(act_tiny_bundle)
    assert info["policy"] == "act" and info["target"] == "onnx" and info["opset"] >= 18
    assert info["validation"]["passed"] is True
    g = info["graphs"][0]
    assert g["inputs"][0]["shape"][0] == "batch"
    assert g["tolerance"]["action"]["atol"] == 1e-4
    assert info["source"]["weights_sha256"] and info["file_sets"] == {"common": True, "onnx": True}


def test_tampered_graph_is_refused(bundle_copy):
    with open(bundle_copy / "act.onnx.data", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(BundleError, match="act.onnx.data: checksum mismatch"):
        load_policy(bundle_copy)


def test_tampered_manifest_is_refused(bundle_copy):
    _edit_manifest(bundle_copy, lambda m: m["runtime"].update(n_action_steps=3))
    with pytest.raises(BundleError, match="manifest.json: checksum mismatch"):
        load_policy(bundle_copy)


def test_future_schema_and_unknown_fields_are_refused(bundle_copy):
    _edit_manifest(bundle_copy, lambda m: m.update(schema_version=[2, 0]))
    with pytest.raises(BundleError, match="newer than this lerobot-edge"):
        Bundle.open(bundle_copy, verify=False)
    _edit_manifest(bundle_copy, lambda m: m.update(schema_version=[1, 0], surprise=1))
    with pytest.raises(BundleError, match="unknown field"):
        Bundle.open(bundle_copy, verify=False)


def test_manifest_schema_is_a_valid_json_schema_shipped_in_the_package():
    import jsonschema
    from importlib.resources import files

    jsonschema.Draft202012Validator.check_schema(json.loads(files("lerobot_edge").joinpath(
        "manifest.schema.json").read_text()))


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["graphs"][0]["inputs"][0]["shape"].__setitem__(1, -3),
     "manifest.json: graphs[0].inputs[0].shape[1]: expected a positive integer or an axis name, got -3"),
    (lambda m: m["graphs"][0]["inputs"][0]["shape"].__setitem__(1, 6.0), "shape[1]: expected a positive integer"),
    (lambda m: m["graphs"][0]["inputs"][0].update(surprise=1),
     "graphs[0].inputs[0]: unknown field(s) ['surprise'] for schema 1.0"),
    (lambda m: m["graphs"][0].update(flops="many"), "graphs[0].flops: expected int or null, got str"),
    (lambda m: m["graphs"][0].pop("file"), "graphs[0].file: missing"),
    (lambda m: m.update(noise_shape=["batch", 0]), "noise_shape[1]: expected a positive integer or an axis name"),
    (lambda m: m.update(schema_version=[1]), "schema_version: expected [major, minor], got [1]"),
])
def test_schema_errors_name_the_field(bundle_copy, edit, message):
    _edit_manifest(bundle_copy, edit)
    with pytest.raises(BundleError) as e:
        Bundle.open(bundle_copy, verify=False)
    assert message in str(e.value)


@pytest.mark.parametrize("bad", ["../outside.onnx", "/etc/passwd", "a/../../b"])
def test_paths_escaping_the_bundle_are_refused(bundle_copy, bad):
    _edit_manifest(bundle_copy, lambda m: m["graphs"][0].update(file=bad))
    with pytest.raises(BundleError, match="escapes the bundle"):
        Bundle.open(bundle_copy, verify=False)


def test_symlink_out_of_the_bundle_is_refused(bundle_copy, tmp_path):
    (tmp_path / "evil.onnx").write_bytes(b"x")
    (bundle_copy / "act.onnx").unlink()
    (bundle_copy / "act.onnx").symlink_to(tmp_path / "evil.onnx")
    with pytest.raises(BundleError, match="outside the bundle"):
        load_policy(bundle_copy)


def test_expected_sha256_pins_the_bundle(act_tiny_bundle):
    import hashlib

    digest = hashlib.sha256((act_tiny_bundle / "checksums.sha256").read_bytes()).hexdigest()
    load_policy(act_tiny_bundle, expected_sha256=digest)
    with pytest.raises(BundleError, match="expected"):
        load_policy(act_tiny_bundle, expected_sha256="0" * 64)


def test_unvalidated_bundle_loads_only_when_allowed(act_tiny_checkpoint, tmp_path):
    from lerobot_edge import export

    b = export(act_tiny_checkpoint, tmp_path / "nv", policy_type="act", validate=False)
    with pytest.raises(ValidationError, match="skipped"):
        load_policy(b)
    with pytest.warns(UserWarning, match="skipped"):
        load_policy(b, allow_unvalidated=True)


def test_existing_output_needs_overwrite(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(BundleError, match="overwrite"):
        BundleWriter(tmp_path / "out")


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="not a bundle"):
        load_policy(tmp_path)
    (tmp_path / "manifest.json").write_text("[1, 2")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_policy(tmp_path)
