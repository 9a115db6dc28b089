"""The bundle: the one thing that travels from the workstation to the robot.

Layout::

    manifest.json          schema version, policy, graphs and their IO, observation map, runtime settings,
                           validation results, source (repo, revision, weights sha256, license)
    checksums.sha256       sha256 of every file of every file set, manifest included (`sha256sum` format)
    stats.safetensors      normalization stats, "<feature key>.<stat>"
    <graph>.onnx[.data]    ONNX graphs (every bundle keeps them, so any backend can run it)
    openvino/, trt/        per-target artefacts (IR, build plan)
    validation/<graph>.npz seeded inputs and fp32 reference outputs, for `selftest`

Loading verifies the checksums of the files the chosen backend needs, the schema version and the manifest's
fields (manifest.schema.json), and refuses anything else with a `BundleError`. Nothing is unpickled; no path
may leave the bundle.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from .errors import BundleError
from .manifest_schema import SCHEMA_VERSION, check_manifest
from .registry import PRECISIONS, TARGETS, backend_file_sets

FORMAT = "lerobot-edge-bundle"
MANIFEST = "manifest.json"
CHECKSUMS = "checksums.sha256"
STATS = "stats.safetensors"
MAX_MANIFEST_BYTES = 16 << 20
MAX_CHECKSUMS_BYTES = 1 << 20
# bytes an ONNX data file may hold past the last tensor its graphs reference (writers may pad for alignment)
MAX_DATA_SLACK = 64 << 10



@dataclass(frozen=True)
class IOSpec:
    """A graph input or output: shape entries are ints or a symbolic name ('batch') for dynamic axes."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class GraphSpec:
    """One exported graph: its ONNX file, IO and the tolerance validation held it to."""

    name: str
    file: str
    inputs: tuple[IOSpec, ...]
    outputs: tuple[IOSpec, ...]
    tolerance: dict = field(default_factory=dict)   # output name -> {"atol": float, "min_cosine": float}
    artifacts: dict = field(default_factory=dict)   # target -> relative path (e.g. openvino IR .xml)
    flops: int | None = None

    def to_json(self) -> dict:
        d = {"name": self.name, "file": self.file, "inputs": [i.to_json() for i in self.inputs],
             "outputs": [o.to_json() for o in self.outputs], "tolerance": self.tolerance,
             "artifacts": self.artifacts}
        if self.flops is not None:
            d["flops"] = self.flops
        return d

    @classmethod
    def from_json(cls, d: dict) -> "GraphSpec":
        """From a manifest graph entry that passed check_manifest (types checked, unknown fields refused)."""
        def io(items):
            return tuple(IOSpec(str(i["name"]), tuple(i["shape"]), str(i.get("dtype", "float32"))) for i in items)
        return cls(str(d["name"]), safe_relpath(d["file"]), io(d["inputs"]), io(d["outputs"]),
                   dict(d.get("tolerance", {})), {k: safe_relpath(v) for k, v in d.get("artifacts", {}).items()},
                   d.get("flops"))


def safe_relpath(rel: str) -> str:
    """A bundle-relative POSIX path that cannot leave the bundle."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\x00" in rel:
        raise BundleError(f"manifest path {rel!r}: expected a relative path inside the bundle")
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or rel.startswith("~"):
        raise BundleError(f"manifest path {rel!r} escapes the bundle (absolute or '..')")
    return str(p)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------ reading


class Bundle:
    """A verified bundle directory. `Bundle.open` is the only way in."""

    def __init__(self, path: Path, manifest: dict):
        self.path = path
        self.manifest = manifest
        self.graphs = {g["name"]: GraphSpec.from_json(g) for g in manifest["graphs"]}
        self.verified: set[str] | None = None   # files whose checksums `verify` checked (None: not verified)
        if len(self.graphs) != len(manifest["graphs"]):
            names = [g["name"] for g in manifest["graphs"]]
            dup = sorted({n for n in names if names.count(n) > 1})
            raise BundleError(f"manifest graphs: duplicate graph name(s) {dup}")

    @classmethod
    def open(cls, path: str | Path, backend: str | None = None, *, expected_sha256: str | None = None,
             verify: bool = True) -> "Bundle":
        """Read and verify `path`: schema, then checksums of the file sets `backend` needs (all if None)."""
        path = Path(path)
        if not (path / MANIFEST).is_file():
            raise BundleError(f"{path}: not a bundle (no {MANIFEST})")
        manifest = _read_manifest(path / MANIFEST)
        bundle = cls(path, manifest)
        if verify:
            sets = list(backend_file_sets(backend)) if backend else list(manifest["files"])
            bundle.verify(sets, expected_sha256)
        return bundle

    def file(self, rel: str) -> Path:
        """Absolute path of a bundle file; refuses paths or symlinks that leave the bundle."""
        p = self.path / safe_relpath(rel)
        root = self.path.resolve()
        if not p.resolve().is_relative_to(root):
            raise BundleError(f"{rel}: resolves outside the bundle ({p.resolve()})")
        return p

    def verified_file(self, rel: str) -> Path:
        """`file(rel)` for a file the runtime reads (tokenizer, embedding table): it must be one whose checksum
        was verified, so a manifest cannot make the robot read an unchecked file of the bundle directory."""
        rel = safe_relpath(rel)
        if self.verified is not None and rel not in self.verified:
            raise BundleError(f"{rel}: not a checksummed file of the bundle's verified file sets")
        return self.file(rel)

    def verify(self, sets: list[str], expected_sha256: str | None = None) -> None:
        """Check every file of `sets` (that the manifest has) against checksums.sha256."""
        sums_path = self.file(CHECKSUMS)
        if not sums_path.is_file():
            raise BundleError(f"{self.path}: missing {CHECKSUMS}")
        if expected_sha256 and sha256_file(sums_path) != expected_sha256.lower():
            raise BundleError(f"{self.path}: {CHECKSUMS} sha256 is not the expected {expected_sha256}")
        sums = _parse_checksums(sums_path)
        files = self.manifest["files"]
        wanted = [MANIFEST] + [f for s in sets if s in files for f in files[s]]
        for rel in wanted:
            if rel not in sums:
                raise BundleError(f"{rel}: not listed in {CHECKSUMS}")
            p = self.file(rel)
            if not p.is_file():
                raise BundleError(f"{rel}: listed in the manifest but missing from {self.path}")
            if sha256_file(p) != sums[rel]:
                raise BundleError(f"{rel}: checksum mismatch (corrupt or tampered bundle)")
        self._check_graph_files(sets, set(wanted))
        self.verified = set(wanted)
        extents: dict[str, int | None] = {}
        for rel in wanted:
            if rel.endswith(".onnx"):
                self._check_external_data(rel, set(wanted), extents)
        _check_extents(self, extents)

    def _check_graph_files(self, sets: list[str], verified: set[str]) -> None:
        """Every file a backend of `sets` will open (graph ONNX, target artefacts) must be a verified file:
        a graph whose file is missing from the manifest's file sets would otherwise run unchecked."""
        for g in self.graphs.values():
            needed = [g.file] if "onnx" in sets else []
            needed += [rel for target, rel in g.artifacts.items() if target in sets]
            for rel in needed:
                if rel not in verified:
                    raise BundleError(f"graph {g.name!r}: {rel} is not a checksummed file of the bundle's "
                                      f"{'/'.join(s for s in sets if s != 'common')} file set")
                if rel.endswith(".xml") and (bin_rel := rel[:-4] + ".bin") not in verified \
                        and self.file(bin_rel).exists():
                    raise BundleError(f"graph {g.name!r}: {bin_rel} (the weights of {rel}) is not checksummed")

    def _check_external_data(self, rel: str, verified: set[str], extents: dict[str, int | None]) -> None:
        """An ONNX file may only reference data files of the bundle that were just verified; `extents`
        collects, per data file, the end of the last tensor referenced (None: a tensor without a length)."""
        from .onnx_refs import scan

        try:
            refs, custom = scan(self.file(rel))
        except (ValueError, RecursionError) as e:
            raise BundleError(f"{rel}: not a readable ONNX file ({e})") from e
        if custom:  # a custom-op library is never loaded from a bundle: such a graph cannot run anyway
            raise BundleError(f"{rel}: uses operator domain(s) {custom}, which no backend here implements "
                              "(lerobot-edge writes standard ONNX only)")
        base = PurePosixPath(rel).parent
        for loc, offset, length in refs:
            try:
                target = safe_relpath(str(base / loc))
            except BundleError as e:
                raise BundleError(f"{rel}: external data {loc!r} points outside the bundle") from e
            self.file(target)
            if target not in verified:
                raise BundleError(f"{rel}: external data {loc!r} is not a checksummed file of the bundle")
            end = None if length is None or extents.get(target, 0) is None else max(extents.get(target, 0),
                                                                                     offset + length)
            extents[target] = end

    def has_files(self, file_set: str) -> bool:
        """Whether the bundle carries every file of `file_set` (a Hub download may hold only some sets)."""
        rels = self.manifest["files"].get(file_set)
        return bool(rels) and all(self.file(f).is_file() for f in rels)

    def quantization(self, graph: str) -> dict:
        """The manifest's quantization record of `graph` (mode, activations, requires, ...); {} when it has none."""
        return (self.manifest.get("quantization") or {}).get(graph) or {}

    def graph_precision(self, graph: str) -> str:
        """The precision graph `graph` runs at: the bundle's, or fp32 for a graph the export gate's precision
        fallback kept in fp32 (manifest quantization mode "fp32"; exporters/precision_fallback.py)."""
        if self.quantization(graph).get("mode") == "fp32":
            return "fp32"
        return self.manifest.get("precision", "fp32")

    def stats(self) -> dict[str, dict[str, np.ndarray]]:
        """feature key -> stat -> float32 array; a file that is not safetensors, a non-float tensor or a
        NaN/inf value is a BundleError (LeRobot's stats are finite; a NaN would reach the robot as a NaN)."""
        from safetensors.numpy import load_file

        try:
            flat = load_file(str(self.file(STATS)))
        except Exception as e:  # safetensors' own error types: truncated, not safetensors, bad header
            raise BundleError(f"{STATS}: not a readable safetensors file ({type(e).__name__}: {e})") from e
        out: dict[str, dict[str, np.ndarray]] = {}
        for name, arr in flat.items():
            key, _, stat = name.rpartition(".")
            if not key or arr.dtype.kind != "f":
                raise BundleError(f"{STATS}: {name!r} is not a '<feature>.<stat>' float tensor ({arr.dtype})")
            if not np.isfinite(arr).all():
                raise BundleError(f"{STATS}: {name} contains NaN or inf")
            out.setdefault(key, {})[stat] = arr.astype(np.float32)
        return out

    def validation_data(self, graph: str) -> dict[str, np.ndarray] | None:
        rel = f"validation/{graph}.npz"
        if rel not in self.manifest["files"].get("common", []):
            return None
        try:
            with np.load(self.file(rel), allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except Exception as e:  # a pickled object array, a corrupt zip: never unpickled
            raise BundleError(f"{rel}: not a readable array file without pickles ({type(e).__name__}: {e})") from e


def _check_extents(bundle: Bundle, extents: dict[str, int | None]) -> None:
    """A data file shorter than the tensors its graphs reference is truncated; one with more than
    MAX_DATA_SLACK bytes past the last of them carries something no graph reads: both refused."""
    for rel, end in extents.items():
        size = bundle.file(rel).stat().st_size
        if end is not None and size < end:
            raise BundleError(f"{rel}: truncated ({size} bytes, its graphs read up to byte {end})")
        if end is not None and size > end + MAX_DATA_SLACK:
            raise BundleError(f"{rel}: oversized ({size} bytes, its graphs read only {end})")


def _parse_checksums(path: Path) -> dict[str, str]:
    if path.stat().st_size > MAX_CHECKSUMS_BYTES:
        raise BundleError(f"{CHECKSUMS}: larger than {MAX_CHECKSUMS_BYTES >> 20} MiB")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise BundleError(f"{CHECKSUMS}: not UTF-8 text ({e})") from e
    sums = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64:
            raise BundleError(f"{CHECKSUMS} line {n}: expected '<sha256>  <path>'")
        sums[safe_relpath(rel)] = digest.lower()
    return sums


def _read_manifest(path: Path) -> dict:
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{path}: manifest larger than {MAX_MANIFEST_BYTES >> 20} MiB")
    try:
        m = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:  # bad JSON, bad UTF-8, NaN/Infinity, absurd nesting or integers
        raise BundleError(f"{path}: not valid JSON ({type(e).__name__}: {str(e)[:200]})") from e
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise BundleError(f"{path}: not a lerobot-edge manifest (format != {FORMAT!r})")
    ver = m.get("schema_version")   # a newer version may have fields this schema refuses: say "upgrade" first
    if isinstance(ver, list) and len(ver) == 2 and all(type(v) is int for v in ver) and tuple(ver) > SCHEMA_VERSION:
        raise BundleError(f"bundle schema {ver[0]}.{ver[1]} is newer than this lerobot-edge supports "
                          f"({SCHEMA_VERSION[0]}.{SCHEMA_VERSION[1]}): upgrade lerobot-edge")
    check_manifest(m)
    for name, allowed in (("target", TARGETS), ("precision", PRECISIONS)):
        if m[name] not in allowed:
            raise BundleError(f"{MANIFEST}: {name} {m[name]!r}: expected one of {list(allowed)}")
    for s, rels in m["files"].items():
        m["files"][s] = [safe_relpath(r) for r in rels]
    return m


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number (a manifest holds finite numbers only)")


# ------------------------------------------------------------------------------------------------ writing


class BundleWriter:
    """Builds a bundle in a staging directory and moves it into place only when it is complete."""

    def __init__(self, path: str | Path, overwrite: bool = False):
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise BundleError(f"{self.path}: already exists (pass --overwrite / overwrite=True to replace it)")
        self.stage = self.path.with_name(f".{self.path.name}.partial")
        shutil.rmtree(self.stage, ignore_errors=True)
        self.stage.mkdir(parents=True)
        self.files: dict[str, list[str]] = {"common": []}

    def abspath(self, rel: str) -> Path:
        p = self.stage / safe_relpath(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def add(self, rel: str, file_set: str = "common") -> str:
        """Record an already written file under a file set (e.g. 'onnx', 'openvino', 'trt')."""
        if not self.abspath(rel).is_file():
            raise BundleError(f"{rel}: was never written into the bundle")
        bucket = self.files.setdefault(file_set, [])
        if rel not in bucket:
            bucket.append(rel)
        return rel

    def write_stats(self, stats: dict[str, dict[str, np.ndarray]]) -> None:
        from safetensors.numpy import save_file

        flat = {f"{k}.{s}": np.ascontiguousarray(v, dtype=np.float32) for k, d in stats.items()
                for s, v in d.items()}
        save_file(flat, str(self.abspath(STATS)))
        self.add(STATS)

    def write_validation(self, graph: str, arrays: dict[str, np.ndarray]) -> None:
        rel = f"validation/{graph}.npz"
        np.savez_compressed(self.abspath(rel), **arrays)
        self.add(rel)

    def finish(self, manifest: dict) -> Path:
        """Write manifest + checksums, then atomically replace `path` with the staged bundle."""
        manifest = {"format": FORMAT, "schema_version": list(SCHEMA_VERSION), **manifest, "files": self.files}
        self.abspath(MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
        every = [MANIFEST] + sorted({f for fs in self.files.values() for f in fs})
        lines = [f"{sha256_file(self.stage / rel)}  {rel}" for rel in every]
        (self.stage / CHECKSUMS).write_text("\n".join(lines) + "\n")
        if self.path.exists():
            shutil.rmtree(self.path)
        os.replace(self.stage, self.path)
        return self.path

    def abort(self) -> None:
        shutil.rmtree(self.stage, ignore_errors=True)
