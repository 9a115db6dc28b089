"""`lerobot-edge serve BUNDLE`: a real NVIDIA Triton Inference Server on this machine via PyTriton (the
`[serve]` extra: nvidia-pytriton ships the tritonserver binary in its wheel), binding the bundle's chunk
function (serving/handler.py) with Triton's dynamic batcher across robots.

Models: `<name>` (the chunk model, serving/protocol.py) and `<name>_info` (the manifest for RemotePolicy).
Ports: gRPC `port` (RemotePolicy's), HTTP `port - 1`, metrics `port + 1` (Triton's 8000/8001/8002 layout
for port 8001). SIGINT and SIGTERM stop the server cleanly (in-flight requests finish first).
"""

from __future__ import annotations

import logging
import os
import signal
import sysconfig
import threading
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import BackendUnavailableError
from ..runtime.loader import load_policy
from . import protocol as P
from .handler import ChunkService

log = logging.getLogger(__name__)
LOAD_KEYS = ("num_inference_steps", "n_action_steps", "rtc", "rtc_options", "seed")


def _import_pytriton():
    try:
        from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
        from pytriton.triton import Triton, TritonConfig
    except ImportError as e:
        raise BackendUnavailableError("lerobot-edge serve needs PyTriton: pip install 'lerobot-edge[serve]' "
                                      f"(nvidia-pytriton; Linux x86_64/aarch64 with glibc >= 2.35; it pins numpy<2, so give the server its "
                                      f"own venv, e.g. `make serve-env`) ({e})") from e
    return DynamicBatcher, ModelConfig, Tensor, Triton, TritonConfig


def _python_libdir_first() -> None:
    """PyTriton's Python-backend stub links libpython3.X.so through the library path. When this interpreter's
    own libpython is not first there (pyenv, conda, a venv over a non-system Python), the system's of another
    patch level is loaded under this interpreter's stdlib and the model fails to start (e.g. Debian's 3.11.2
    under pyenv's 3.11.7: "'_thread.RLock' object has no attribute '_recursion_count'")."""
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir and sysconfig.get_config_var("Py_ENABLE_SHARED") and Path(libdir).is_dir():
        paths = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p and p != libdir]
        os.environ["LD_LIBRARY_PATH"] = ":".join([libdir, *paths])


def _tensors(Tensor, specs: list[P.TensorSpec]) -> list:
    return [Tensor(name=s.name, dtype=s.dtype, shape=s.dims, optional=s.optional) for s in specs]


def _infer_fn(service: ChunkService) -> Callable:
    def infer(requests):
        return service.handle([(r.data, r.parameters or {}) for r in requests])
    return infer


def serve(bundle: str | Path, *, port: int = 8001, host: str = "127.0.0.1", http_port: int | None = None,
          metrics_port: int | None = None, name: str | None = None, backend: str | None = None,
          backend_options: Mapping[str, Any] | None = None, max_batch: int = 8, max_queue_delay_us: int = 2000,
          batching: bool = True, instances: int = 1, allow_unvalidated: bool = False,
          ready: Callable[[str], None] | None = None, stop: threading.Event | None = None,
          **load_options) -> None:
    """Serve `bundle` until SIGINT/SIGTERM (or `stop` is set). `batching=False` turns Triton's dynamic batcher
    off (each request runs alone). `instances`: model instances, each with its own loaded engines.
    `ready(url)` is called once the models are loaded."""
    unknown = sorted(set(load_options) - set(LOAD_KEYS))
    if unknown:
        raise ValueError(f"serve(): unknown load option(s) {unknown}; accepted: {list(LOAD_KEYS)}")
    if not 1 <= max_batch <= 1024 or instances < 1:
        raise ValueError(f"max_batch={max_batch}, instances={instances}: expected 1..1024 and >= 1")
    DynamicBatcher, ModelConfig, Tensor, Triton, TritonConfig = _import_pytriton()
    name = P.model_name(bundle, name)
    services = []
    for _ in range(instances):
        policy = load_policy(bundle, backend, backend_options=backend_options, allow_unvalidated=allow_unvalidated,
                             **load_options)
        services.append(ChunkService(policy, load_options))
    policy = services[0].policy
    _python_libdir_first()
    config = TritonConfig(grpc_address=host, grpc_port=port, http_address=host,
                          http_port=http_port or port - 1, metrics_port=metrics_port or port + 1,
                          log_verbose=0, exit_on_error=True)
    batcher = DynamicBatcher(max_queue_delay_microseconds=max_queue_delay_us) if batching else None
    stop = stop or threading.Event()
    restore = _stop_on_signals(stop)
    try:
        with Triton(config=config) as triton:
            triton.bind(model_name=name, infer_func=[_infer_fn(s) for s in services],
                        inputs=_tensors(Tensor, P.chunk_inputs(policy.manifest, policy.takes_task,
                                                               policy.supports_rtc)),
                        outputs=_tensors(Tensor, P.chunk_outputs(policy.manifest)),
                        config=ModelConfig(max_batch_size=max_batch, batcher=batcher), strict=False)
            info = P.info_payload(policy.manifest, policy.bundle.stats().get(policy.action_key, {}),
                                  policy.supports_rtc)
            triton.bind(model_name=name + P.INFO_SUFFIX, infer_func=_info_fn(info),
                        inputs=[Tensor(name=P.INFO_INPUT, dtype=np.int32, shape=(1,))],
                        outputs=[Tensor(name=P.INFO_OUTPUT, dtype=np.bytes_, shape=(1,))],
                        config=ModelConfig(batching=False))
            triton.run()
            url = f"grpc://{host}:{port}"
            log.info("serving %s (%s, %s) on %s", name, policy.type, policy.backend, url)
            if ready is not None:
                ready(url)
            stop.wait()
    finally:
        restore()


def _info_fn(payload: bytes) -> Callable:
    def info(requests):
        return [{P.INFO_OUTPUT: np.array([payload], dtype=object)} for _ in requests]
    return info


def _stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """SIGINT/SIGTERM set `stop` (from the main thread only); -> a function restoring the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, lambda signum, frame: stop.set())

    def restore() -> None:
        for s, h in previous.items():
            signal.signal(s, h)
    return restore
