"""The one interface every backend implements (Polygraphy's runner contract, kept small).

    session = backend.load(graph, bundle, options)
    outputs = session.run({"observation.state": x, ...}, keep=("kv",))

Inputs are numpy arrays or device handles returned by an earlier `run` of a session of the same backend;
outputs named in `keep` come back as such handles (an ORT OrtValue, an OpenVINO Tensor, a TensorRT device
buffer) so that a KV cache or a conditioning tensor stays on the device between graphs.

A kept handle is valid until the next `run` of the session that produced it with inputs of the same shapes:
engines write their outputs into buffers allocated once (ONNX Runtime's IOBinding, TensorRT's device buffers),
so a later run overwrites them. The runtimes use a handle only before they run its producer again (a KV cache
for the denoise steps of one chunk, Diffusion's global_cond for one chunk's loop). Numpy outputs are always
fresh arrays the caller owns.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Any, Mapping, Protocol

import numpy as np

from ..bundle import Bundle, GraphSpec
from ..errors import BackendUnavailableError, ObservationError
from ..progress import ProgressLike, as_progress
from ..registry import BACKENDS, load

DeviceTensor = Any  # backend-specific handle (OrtValue, ov.Tensor, TensorRT device buffer)


class Session(Protocol):
    graph: GraphSpec

    def run(self, inputs: Mapping[str, np.ndarray | DeviceTensor], *, keep: tuple[str, ...] = ()
            ) -> dict[str, np.ndarray | DeviceTensor]: ...


class Backend(ABC):
    """A backend: knows how to turn a bundle graph into a Session. Subclasses import their library lazily."""

    name: str = ""
    module: str = ""          # the Python module that must import for this backend to be available
    install_hint: str = ""
    options: dict[str, str] = {}   # backend_options keys this backend accepts -> what they mean

    def __init__(self, progress: ProgressLike = None):
        self.progress = as_progress(progress)  # where long loads report (a TensorRT engine build)

    @classmethod
    def is_available(cls) -> bool:
        try:
            importlib.import_module(cls.module)
            return True
        except Exception:  # ImportError, or a broken install that fails on import
            return False

    @classmethod
    def import_library(cls):
        try:
            return importlib.import_module(cls.module)
        except Exception as e:
            raise BackendUnavailableError(f"backend {cls.name!r} needs `{cls.module}`, which does not import "
                                          f"here ({type(e).__name__}: {e}). {cls.install_hint}") from e

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        allowed = {**COMMON_OPTIONS, **cls.options}
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ValueError(f"backend_options {unknown} unknown to backend {cls.name!r}; "
                             f"accepted: {', '.join(sorted(allowed))}")
        per_graph = options.get("graph_options", {})
        if not isinstance(per_graph, Mapping) or not all(isinstance(v, Mapping) for v in per_graph.values()):
            raise ValueError(f"backend_options graph_options={per_graph!r}: expected {{graph name: {{option: value}}}}")
        for graph, sub in per_graph.items():
            bad = sorted(set(sub) - set(allowed) | ({"graph_options"} & set(sub)))
            if bad:
                raise ValueError(f"backend_options graph_options[{graph!r}]: {bad} unknown to backend {cls.name!r}; "
                                 f"accepted: {', '.join(sorted(set(allowed) - {'graph_options'}))}")
        return dict(options)

    @staticmethod
    def graph_options(options: Mapping[str, Any], graph: str) -> dict[str, Any]:
        """The options one graph is loaded with: the shared ones, then its `graph_options` entry over them
        (e.g. other threads for TDMPC's large-batch value graph)."""
        own = (options.get("graph_options") or {}).get(graph, {})
        return {**{k: v for k, v in options.items() if k != "graph_options"}, **own}

    @abstractmethod
    def load(self, graph: GraphSpec, bundle: Bundle, options: Mapping[str, Any]) -> Session:
        """A ready session for `graph` of `bundle` (options already checked)."""


COMMON_OPTIONS = {
    "threads": "intra-op CPU threads (default: the library's choice)",
    "device": "device to run on (backend-specific names: 'cpu', 'cuda:0', 'GPU', 'NPU', …)",
    "graph_options": "per-graph overrides {graph name: {option: value}} of the other options (an unknown graph "
                     "name is an error at load)",
}


def check_io(graph: GraphSpec, inputs: list[tuple], outputs: list[tuple]) -> None:
    """The engine's own IO (name, shape with None/str for dynamic dims[, numpy dtype name]) must be what the
    manifest says: a bundle whose graph file disagrees with its manifest is refused before it runs."""
    from ..errors import BundleError

    for kind, want, have in (("inputs", graph.inputs, inputs), ("outputs", graph.outputs, outputs)):
        if sorted(w.name for w in want) != sorted(h[0] for h in have):
            raise BundleError(f"graph {graph.name!r}: {kind} of {graph.file} are {[h[0] for h in have]}, "
                              f"the manifest says {[w.name for w in want]}")
        shapes = {h[0]: h[1] for h in have}
        dtypes = {h[0]: h[2] for h in have if len(h) > 2 and h[2] is not None}
        for w in want:
            if w.name in dtypes and dtypes[w.name] != w.dtype:
                raise BundleError(f"graph {graph.name!r} {kind[:-1]} {w.name!r}: {graph.file} has dtype "
                                  f"{dtypes[w.name]}, the manifest says {w.dtype}")
            got = tuple(shapes[w.name])
            ok = len(got) == len(w.shape) and all(isinstance(a, str) or not isinstance(b, int) or a == b
                                                  for a, b in zip(w.shape, got))
            if not ok:
                raise BundleError(f"graph {graph.name!r} {kind[:-1]} {w.name!r}: {graph.file} has shape "
                                  f"{list(got)}, the manifest says {list(w.shape)}")


def check_feed(graph: GraphSpec, feed: Mapping[str, Any]) -> None:
    """Names and static dims of numpy inputs against the manifest, before the engine sees them."""
    want = {i.name: i for i in graph.inputs}
    missing = sorted(set(want) - set(feed))
    extra = sorted(set(feed) - set(want))
    if missing or extra:
        raise ObservationError(f"graph {graph.name!r}: missing inputs {missing}, unexpected inputs {extra}")
    for name, value in feed.items():
        if not isinstance(value, np.ndarray):
            continue  # a device handle from an earlier run: its shape was checked when it was produced
        spec = want[name]
        ok = value.ndim == len(spec.shape) and all(isinstance(s, str) or s == d
                                                   for s, d in zip(spec.shape, value.shape))
        if not ok:
            raise ObservationError(f"graph {graph.name!r} input {name!r}: expected shape "
                                   f"{list(spec.shape)}, got {list(value.shape)}")


def get_backend(name: str) -> type[Backend]:
    """The Backend class registered as `name` (registry.BACKENDS); imported only when asked for."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {sorted(BACKENDS)}")
    return load(BACKENDS[name].backend)


def available_backends() -> list[str]:
    """Backends whose library imports here (what `make test`'s contract test runs over)."""
    names = []
    for n in BACKENDS:
        try:
            if get_backend(n).is_available():
                names.append(n)
        except ImportError:  # a backend module this build does not ship
            continue
    return names


NO_VNNI_ISAS = {"SSE41", "AVX", "AVX2", "AVX512_CORE", "AVX512_MIC", "AVX512_MIC_4OPS"}


def cpu_has_vnni(onednn: bool = True) -> bool:
    """Whether int8 dot products here are VNNI ones (no int16 saturation of u8 x s8 pair sums): the CPU's flags
    (Linux x86; elsewhere, ARM included, assumed), with `onednn` capped by ONEDNN_MAX_CPU_ISA as OpenVINO's CPU
    plugin honours it (ONNX Runtime's MLAS does not read it)."""
    import os

    if onednn and os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() in NO_VNNI_ISAS:
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return True
    return not flags or bool({"avx512_vnni", "avx_vnni", "amx_int8"} & set(flags))
