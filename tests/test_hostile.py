"""Hostile input: crafted bundles and fuzzed manifests/observations. Each is refused with a typed error that
names the problem; none reaches a backend, none yields an action, none changes the policy's state."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lerobot_edge import load_policy
from lerobot_edge.bundle import CHECKSUMS, Bundle
from lerobot_edge.errors import BundleError, LeRobotEdgeError, ObservationError


def reseal(path: Path) -> None:
    """Recompute checksums.sha256 as an attacker who rewrote the bundle would (no pinned digest)."""
    lines = []
    for line in (path / CHECKSUMS).read_text().splitlines():
        _, rel = line.split("  ", 1)
        lines.append(f"{hashlib.sha256((path / rel).read_bytes()).hexdigest()}  {rel}")
    (path / CHECKSUMS).write_text("\n".join(lines) + "\n")


def edit_manifest(path: Path, fn) -> None:
    m = json.loads((path / "manifest.json").read_text())
    fn(m)
    (path / "manifest.json").write_text(json.dumps(m))
    reseal(path)


@pytest.fixture
def bundle(act_tiny_bundle, tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(act_tiny_bundle, dst)
    return dst


def _external_data_escape(b: Path):
    import onnx

    (b.parent / "secret.bin").write_bytes((b / "act.onnx.data").read_bytes())
    m = onnx.load(str(b / "act.onnx"), load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = "../secret.bin"
    (b / "act.onnx").write_bytes(m.SerializeToString())
    reseal(b)


def _renamed_input(b: Path):
    edit_manifest(b, lambda m: m["graphs"][0]["inputs"][0].update(name="observation.joints"))


def _wrong_output_shape(b: Path):
    edit_manifest(b, lambda m: m["graphs"][0]["outputs"][0].update(shape=["batch", 99, 4]))


def _missing_graph_file(b: Path):
    (b / "act.onnx").unlink()


def _truncated_data(b: Path):
    data = b / "act.onnx.data"
    data.write_bytes(data.read_bytes()[:1000])


def _garbage_onnx(b: Path):
    (b / "act.onnx").write_bytes(b"\xff" * 64)
    reseal(b)


def _huge_manifest(b: Path):
    (b / "manifest.json").write_text(" " * (17 << 20) + "{}")


def _graph_not_listed(b: Path):
    edit_manifest(b, lambda m: m["files"].update(onnx=["act.onnx"]))  # data file no longer in the set


def _unknown_runtime(b: Path):
    edit_manifest(b, lambda m: m["runtime"].update(kind="teleport"))


def _stats_missing(b: Path):
    from safetensors.numpy import load_file, save_file

    stats = load_file(str(b / "stats.safetensors"))
    stats.pop("action.std")
    save_file(stats, str(b / "stats.safetensors"))
    reseal(b)


ATTACKS = {
    "external data outside the bundle": (_external_data_escape, "points outside the bundle"),
    "graph input renamed in the manifest": (_renamed_input, "inputs of act.onnx are"),
    "graph output shape disagrees": (_wrong_output_shape, "output 'action'"),
    "graph file missing": (_missing_graph_file, "missing from"),
    "truncated weights": (_truncated_data, "checksum mismatch"),
    "garbage ONNX resealed": (_garbage_onnx, "not a readable ONNX file"),
    "manifest over 16 MiB": (_huge_manifest, "larger than"),
    "external data not checksummed": (_graph_not_listed, "not a checksummed file"),
    "unknown runtime kind": (_unknown_runtime, "runtime kind 'teleport'"),
    "stats lack a needed value": (_stats_missing, "lacks"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_crafted_bundles_are_refused(bundle, attack):
    craft, message = ATTACKS[attack]
    craft(bundle)
    with pytest.raises(BundleError, match=message):
        load_policy(bundle)


MUTATIONS = st.sampled_from(["drop", "type", "value"])
JSON_VALUES = st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=5), st.lists(st.integers(), max_size=3),
                        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_manifests_fail_cleanly(act_tiny_bundle, tmp_path_factory, data):
    """Any single mutation of a (resealed) manifest either loads a working policy or raises one of our
    typed errors — never a KeyError/TypeError from deep inside."""
    b = tmp_path_factory.mktemp("mut") / "b"
    shutil.copytree(act_tiny_bundle, b)
    m = json.loads((b / "manifest.json").read_text())
    paths = [p for p in _paths(m) if p and p[0] not in ("created", "lerobot_edge_version", "source", "validation")]
    path = data.draw(st.sampled_from(paths))
    parent = m
    for k in path[:-1]:
        parent = parent[k]
    how = data.draw(MUTATIONS)
    if how == "drop" and isinstance(parent, dict):
        parent.pop(path[-1])
    else:
        parent[path[-1]] = data.draw(JSON_VALUES)
    (b / "manifest.json").write_text(json.dumps(m))
    reseal(b)
    try:
        policy = load_policy(b)
        policy.select_action({"observation.state": np.zeros(6, np.float32),
                              "observation.images.top": np.zeros((48, 64, 3), np.uint8)})
    except LeRobotEdgeError:
        pass


OBS_VALUES = st.one_of(
    st.none(), st.text(max_size=4), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.builds(lambda shape, dt: np.zeros(shape, dt), st.lists(st.integers(0, 5), max_size=4).map(tuple),
              st.sampled_from([np.uint8, np.float32, np.float64, np.int32, np.bool_, np.uint16])),
    st.builds(lambda v: np.full((48, 64, 3), v, np.float32), st.sampled_from([np.nan, np.inf])),
    st.builds(lambda b: np.zeros((b, 6), np.float32), st.integers(0, 3)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["observation.state", "observation.images.top", "observation.images.extra"]),
       value=OBS_VALUES)
def test_fuzzed_observations_are_rejected_without_side_effects(act_tiny_bundle, key, value):
    policy = _cached_policy(act_tiny_bundle)
    good = {"observation.state": np.zeros(6, np.float32), "observation.images.top": np.zeros((48, 64, 3), np.uint8)}
    policy.reset()
    policy.select_action(good)
    before = [a.copy() for a in policy.queue._q]
    obs = {**good, key: value}
    try:
        action = policy.select_action(obs)
    except ObservationError:
        assert [a.tolist() for a in policy.queue._q] == [a.tolist() for a in before]
    else:
        assert np.isfinite(action).all()


_POLICIES: dict = {}


def _cached_policy(path):
    if path not in _POLICIES:
        _POLICIES[path] = load_policy(path)
    return _POLICIES[path]


def test_bundle_open_verifies_external_data_by_default(act_tiny_bundle):
    assert Bundle.open(act_tiny_bundle, "onnxruntime").graphs["act"].file == "act.onnx"
