"""Prebuilt TensorRT engines (the `trtexec --saveEngine` habit): `lerobot-edge build BUNDLE [--output DIR]` builds
every graph's engine once, into the per-user engine cache the loader reads, or into a directory that is copied to
a fleet of identical devices and named at load time with `backend_options={"engine_dir": DIR}`.

An engine directory is `engines.json` + one `<graph>-<key>.engine` per graph. The key is the engine cache's
(backends/tensorrt_plan.engine_cache_key: ONNX sha256, build-plan hash, TensorRT and CUDA versions, GPU name,
compute capability); engines.json records each part, so a mismatch says what differs, and each engine's
sha256, so a half-copied file is caught. On load, a mismatch rebuilds into the user cache (default) or, with
`engine_mismatch="refuse"`, is a BundleError: a stale engine never runs.

TensorRT-free (the library is imported by the callers that build), so the key and manifest logic is tested
everywhere.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from ..bundle import Bundle, GraphSpec, sha256_file
from ..errors import BundleError
from .tensorrt_plan import PLAN_FORMAT, engine_cache_key, plan_hash

ENGINES_FILE = "engines.json"
ENGINES_FORMAT = "lerobot-edge-trt-engines"
ENGINES_VERSION = 1
MISMATCH = ("rebuild", "refuse")


@dataclass(frozen=True)
class DeviceFacts:
    """What an engine is tied to besides its ONNX and plan."""

    tensorrt: str
    cuda: str
    gpu: str
    compute_capability: str


def engine_key(plan: Mapping[str, Any], facts: DeviceFacts) -> str:
    return engine_cache_key(plan["onnx_sha256"], dict(plan), facts.tensorrt, facts.cuda, facts.gpu,
                            facts.compute_capability)


def engine_file_name(graph: str, key: str) -> str:
    """The engine's file name, in the user cache and in an engine directory alike."""
    return f"{graph}-{key[:24]}.engine"


def graph_plan(bundle: Bundle, graph: GraphSpec) -> tuple[dict, Path]:
    """The graph's TensorRT build plan and its ONNX file, checked against each other."""
    rel = graph.artifacts.get("trt")
    if not rel:
        raise BundleError(f"graph {graph.name!r} has no TensorRT build plan: export with --target trt")
    plan = json.loads(bundle.file(rel).read_text())
    if plan.get("format") != PLAN_FORMAT:
        raise BundleError(f"{rel}: not a lerobot-edge TensorRT build plan")
    onnx_path = bundle.file(graph.file)
    if sha256_file(onnx_path) != plan["onnx_sha256"]:
        raise BundleError(f"{rel}: built for another {graph.file} (sha256 differs)")
    return plan, onnx_path


def check_engine_options(options: Mapping[str, Any]) -> None:
    mode = options.get("engine_mismatch", "rebuild")
    if mode not in MISMATCH:
        raise ValueError(f"backend_options engine_mismatch={mode!r}: expected one of {list(MISMATCH)}")
    if options.get("engine_dir") is not None and not Path(options["engine_dir"]).expanduser().is_dir():
        raise BundleError(f"backend_options engine_dir={options['engine_dir']!r}: no such directory (build one "
                          "with `lerobot-edge build BUNDLE --output DIR`)")


# -- the engine directory's manifest -----------------------------------------------------------------
def read_manifest(engine_dir: Path) -> dict:
    path = Path(engine_dir) / ENGINES_FILE
    if not path.is_file():
        raise BundleError(f"{engine_dir}: no {ENGINES_FILE}; not an engine directory made by `lerobot-edge build`")
    try:
        m = json.loads(path.read_text())
    except ValueError as e:
        raise BundleError(f"{path}: not JSON ({e})") from e
    if m.get("format") != ENGINES_FORMAT or not isinstance(m.get("engines"), dict):
        raise BundleError(f"{path}: not a lerobot-edge engine manifest (format {m.get('format')!r})")
    if int(m.get("version", 0)) > ENGINES_VERSION:
        raise BundleError(f"{path}: engine manifest version {m.get('version')} is newer than this lerobot-edge "
                          f"reads ({ENGINES_VERSION}): upgrade lerobot-edge")
    return m


def new_manifest(bundle: Bundle, facts: DeviceFacts) -> dict:
    return {"format": ENGINES_FORMAT, "version": ENGINES_VERSION, "device": asdict(facts),
            "bundle": {"path": str(bundle.path), "policy": bundle.manifest.get("policy", {}).get("type"),
                       "checksums_sha256": bundle_digest(bundle)},
            "engines": {}}


def engine_entry(graph: str, key: str, plan: Mapping[str, Any], path: Path) -> dict:
    return {"file": path.name, "key": key, "onnx_sha256": plan["onnx_sha256"], "plan_sha256": plan_hash(dict(plan)),
            "precision": plan.get("precision"), "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def write_manifest(engine_dir: Path, manifest: dict) -> Path:
    path = Path(engine_dir) / ENGINES_FILE
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def bundle_digest(bundle: Bundle) -> str | None:
    """sha256 of the bundle's checksums.sha256 (what `expected_sha256` pins): which bundle engines came from."""
    p = Path(bundle.path) / "checksums.sha256"
    return sha256_file(p) if p.is_file() else None


# -- lookup on load ----------------------------------------------------------------------------------
def mismatch(manifest: dict, engine_dir: Path, graph: str, plan: Mapping[str, Any], facts: DeviceFacts) -> str | None:
    """None when `engine_dir` holds a sound engine for this graph, plan and device; else what differs."""
    entry = manifest["engines"].get(graph)
    if entry is None:
        return f"no engine for graph {graph!r} (it has {sorted(manifest['engines'])})"
    if entry.get("key") != engine_key(plan, facts):
        return "; ".join(_differences(manifest.get("device", {}), entry, plan, facts)) or "engine key differs"
    path = Path(engine_dir) / entry["file"]
    if Path(entry["file"]).name != entry["file"] or not path.is_file():
        return f"engine file {entry['file']!r} is missing"
    if path.stat().st_size != entry.get("bytes") or sha256_file(path) != entry.get("sha256"):
        return f"engine file {entry['file']} does not match its recorded size/sha256 (incomplete copy?)"
    return None


def _differences(device: Mapping[str, Any], entry: Mapping[str, Any], plan: Mapping[str, Any],
                 facts: DeviceFacts) -> list[str]:
    out = []
    if entry.get("onnx_sha256") != plan["onnx_sha256"]:
        out.append("built from another ONNX graph (sha256 differs)")
    if entry.get("plan_sha256") != plan_hash(dict(plan)):
        out.append("built from another build plan (precision, profiles or flags differ)")
    for field, what in (("tensorrt", "TensorRT"), ("cuda", "CUDA runtime"), ("gpu", "GPU"),
                        ("compute_capability", "compute capability")):
        here = getattr(facts, field)
        if device.get(field) != here:
            out.append(f"{what} {device.get(field)} (engines) vs {here} (here)")
    return out


def find_engine(engine_dir: str | Path, graph: str, plan: Mapping[str, Any], facts: DeviceFacts,
                on_mismatch: str = "rebuild") -> tuple[Path | None, str | None]:
    """-> (the engine file to load, None) or (None, why not) when it must be rebuilt; with
    on_mismatch="refuse" a mismatch is a BundleError naming what differs."""
    engine_dir = Path(engine_dir).expanduser()
    manifest = read_manifest(engine_dir)
    why = mismatch(manifest, engine_dir, graph, plan, facts)
    if why is None:
        return engine_dir / manifest["engines"][graph]["file"], None
    if on_mismatch == "refuse":
        raise BundleError(f"{engine_dir}: the engine of graph {graph!r} does not fit this device: {why}. Rebuild it "
                          "here with `lerobot-edge build BUNDLE --output DIR`, or load with "
                          "engine_mismatch='rebuild'")
    return None, why
