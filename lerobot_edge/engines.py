"""`lerobot-edge build BUNDLE [--output ENGINE_DIR]`: build a `--target trt` bundle's TensorRT engines once, on
the device they will run on (the `trtexec --saveEngine` habit), instead of on the first `load_policy`.

- no output: into the per-user engine cache (`~/.cache/lerobot_edge/engines`), where every later load finds them;
- `output=DIR`: into DIR (engines.json + one .engine per graph), to copy to a fleet of identical devices and
  load there with `load_policy(bundle, backend_options={"engine_dir": DIR})` (add `"engine_mismatch":
  "refuse"` to refuse instead of rebuilding when a device differs). Keys and the manifest:
  backends/tensorrt_engines.py.

numpy + TensorRT + cuda-python; no torch.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .backends.tensorrt_engines import (bundle_digest, engine_entry, engine_file_name, engine_key, graph_plan,
                                        new_manifest, read_manifest, write_manifest)
from .backends.tensorrt_plan import check_gpu_precision
from .bundle import Bundle
from .errors import BundleError
from .progress import ProgressLike, as_progress


def build_engines(bundle: str | Path, output: str | Path | None = None, *, device: str = "cuda:0",
                  rebuild: bool = False, overwrite: bool = False, progress: ProgressLike = None) -> dict:
    """Build (or keep, when up to date) every graph's engine. -> {"engine_dir", "device", "engines": [{graph,
    file, key, built (bool), seconds}]}. Bundle problems (not a trt bundle, checksums) are BundleErrors raised
    before TensorRT is imported; a missing TensorRT, cuda-python or GPU is a BackendUnavailableError."""
    from .backends.tensorrt import TensorRTBackend, build_engine, device_facts, device_index, progress_monitor
    from .paths import cache_root

    progress = as_progress(progress)
    device_index(device)
    b = Bundle.open(bundle, "tensorrt")
    plans = {name: graph_plan(b, g) for name, g in b.graphs.items()}   # refuses a bundle without plans
    target = Path(output).expanduser() if output is not None else None
    manifest_in = _existing(target, b, overwrite) if target is not None else None

    trt, cudart = TensorRTBackend.gpu_runtime()
    facts = device_facts(trt, cudart, device)
    for plan, _ in plans.values():   # fp8 on Orin & co: a typed error naming the GPU, before minutes of building
        check_gpu_precision(plan["precision"], facts.compute_capability, facts.gpu)
    where = target or cache_root() / "engines"
    where.mkdir(parents=True, exist_ok=True)
    manifest = manifest_in or new_manifest(b, facts)
    manifest["device"] = facts.__dict__.copy()
    rows = []
    for name, (plan, onnx_path) in plans.items():
        key = engine_key(plan, facts)
        path = where / engine_file_name(name, key)
        up_to_date = path.is_file() and not rebuild and _recorded(manifest, name, key, path, target)
        t0 = time.perf_counter()
        if not up_to_date:
            monitor = progress_monitor(trt, progress)   # held for the build: TensorRT calls into it
            with progress.task(f"building the TensorRT engine of {name!r} ({plan['precision']}; minutes)"):
                _write_atomic(path, build_engine(trt, onnx_path, plan, monitor))
        if target is not None:
            manifest["engines"][name] = engine_entry(name, key, plan, path)
        rows.append({"graph": name, "file": str(path), "key": key, "built": not up_to_date,
                     "seconds": round(time.perf_counter() - t0, 2)})
    if target is not None:
        write_manifest(target, manifest)
    return {"engine_dir": str(where), "device": facts.__dict__.copy(), "engines": rows}


def _existing(target: Path, b: Bundle, overwrite: bool) -> dict | None:
    """The engine manifest already in `target` when it is this bundle's (its engines may be reused); another
    bundle's is refused unless overwrite."""
    if not (target / "engines.json").is_file():
        if target.exists() and any(target.iterdir()) and not overwrite:
            raise BundleError(f"{target} exists and is not an engine directory: choose an empty or new --output")
        return None
    m = read_manifest(target)
    if m.get("bundle", {}).get("checksums_sha256") == bundle_digest(b):
        return m
    if not overwrite:
        raise BundleError(f"{target} holds the engines of another bundle ({m.get('bundle', {}).get('path')}); "
                          "choose another --output or pass --overwrite")
    for entry in m["engines"].values():
        (target / Path(entry["file"]).name).unlink(missing_ok=True)
    return None


def _recorded(manifest: dict, graph: str, key: str, path: Path, target: Path | None) -> bool:
    """The user cache trusts its key-named files (as the loader does); an engine directory also its manifest."""
    if target is None:
        return True
    entry = manifest["engines"].get(graph) or {}
    return entry.get("key") == key and entry.get("bytes") == path.stat().st_size


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
