"""The engine options of a bench run: `backend_options` (one dict for every engine backend, or one dict per
backend keyed by its name), `device` and `threads` -> the backend_options each backend is loaded with.

    {"threads": 1}                                              every engine backend
    {"onnxruntime": {"device": "cuda", "cuda_graph": true}, "openvino": {"device": "GPU"}}   per backend

Checked before anything is exported: an unknown key is a ValueError naming it (CLI exit 2).
"""

from __future__ import annotations

from typing import Any, Mapping

from ..registry import BACKENDS

EAGER_ON_CPU = ("eager PyTorch runs on the CPU in `bench`; benchmarks/gpu_check.py times our PyTorch modules on "
                "CUDA (eager and torch.compile)")


def per_backend(options: Mapping[str, Any] | None) -> bool:
    """Whether `options` is keyed by backend name (every key a backend) rather than one dict for all."""
    if not options:
        return False
    named = [k for k in options if k in BACKENDS]
    if named and len(named) != len(options):
        raise ValueError(f"backend_options mixes backend names {named} with option keys "
                         f"{sorted(set(options) - set(named))}: give one dict for every backend, or one per backend")
    return bool(named)


def engine_options(backend: str, options: Mapping[str, Any] | None, device: str | None = None,
                   threads: int | None = None) -> dict[str, Any]:
    """The backend_options `backend` is loaded with: its dict (or the shared one), then --device and --threads
    where the dict does not set them."""
    if per_backend(options):
        sub = options.get(backend) or {}
        if not isinstance(sub, Mapping):
            raise ValueError(f"backend_options[{backend!r}] must be a dict of options, got {sub!r}")
        mine = dict(sub)
    else:
        mine = dict(options or {})
    if device is not None:
        mine.setdefault("device", device)
    if threads:
        mine.setdefault("threads", int(threads))
    return mine


def check_engine_options(backends: tuple[str, ...], options: Mapping[str, Any] | None, device: str | None,
                         threads: int | None) -> None:
    """Every engine backend of the run accepts its options (unknown keys named); backends named in a per-backend
    dict must be among those benchmarked."""
    from ..backends import get_backend

    if per_backend(options):
        stray = sorted(set(options) - set(backends))
        if stray:
            raise ValueError(f"backend_options for {stray}, which this run does not benchmark ({list(backends)})")
    for b in backends:
        if b in BACKENDS:
            get_backend(b).check_options(engine_options(b, options, device, threads))


def eager_skip_reason(device: str | None) -> str | None:
    """Why the eager variants do not run with this --device (None: they run)."""
    return None if device is None or str(device).lower() == "cpu" else EAGER_ON_CPU
