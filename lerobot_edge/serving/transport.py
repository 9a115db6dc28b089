"""The robot side's connection to a served policy: tritonclient's gRPC client with request timeouts,
reconnect with exponential backoff, and Triton's failures mapped to our typed errors.

- Server down, unreachable, or slower than `timeout`: BackendUnavailableError (exit code 3), with
  `retry_after` (seconds). Until then further calls fail at once without touching the network, so a control
  loop retrying every tick does not hammer a dead server; the first call after it reconnects.
- A request Triton refuses (an input of the wrong shape or type): ObservationError; an unknown model:
  BundleError, unless this model answered before (then the server is restarting: unavailable).
- A request our server refused: the error it names (serving/protocol.py `error` output).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Mapping

import numpy as np

from ..errors import BackendUnavailableError, BundleError, LeRobotEdgeError, ObservationError
from . import protocol as P

UNAVAILABLE = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "RESOURCE_EXHAUSTED", "ABORTED")
REFUSED = ("INVALID_ARGUMENT", "NOT_FOUND", "OUT_OF_RANGE", "FAILED_PRECONDITION")
TRITON_DTYPES = {np.dtype(np.float32): "FP32", np.dtype(np.uint8): "UINT8", np.dtype(np.int32): "INT32"}


def _grpc():
    try:
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException
    except ImportError as e:
        raise BackendUnavailableError("RemotePolicy needs tritonclient: pip install 'lerobot-edge[remote]' "
                                      f"(tritonclient[grpc]) ({e})") from e
    return grpcclient, InferenceServerException


def split_url(url: str) -> str:
    """"grpc://host:port" | "host:port" -> "host:port" (tritonclient's form)."""
    u = url.strip()
    for prefix in ("grpc://", "triton://"):
        if u.startswith(prefix):
            u = u[len(prefix):]
    if u.startswith(("http://", "https://")):
        raise ValueError(f"{url}: RemotePolicy speaks Triton's gRPC protocol: use grpc://host:port (Triton's "
                         "gRPC port, 8001 by default)")
    if ":" not in u:
        raise ValueError(f"{url}: expected grpc://host:port")
    return u.rstrip("/")


class Backoff:
    """Delays base, 2*base, … capped at `cap` seconds between reconnect attempts; reset by a success."""

    def __init__(self, base: float = 0.1, cap: float = 2.0):
        self.base, self.cap = float(base), float(cap)
        self.failures = 0
        self.retry_at = 0.0

    def failed(self) -> float:
        delay = min(self.cap, self.base * 2 ** self.failures)
        self.failures += 1
        self.retry_at = time.monotonic() + delay
        return delay

    def ok(self) -> None:
        self.failures, self.retry_at = 0, 0.0

    def wait_left(self) -> float:
        return max(0.0, self.retry_at - time.monotonic())


class TritonTransport:
    """One robot's gRPC connection to `url` (thread-safe: one request at a time)."""

    def __init__(self, url: str, *, timeout: float = 5.0, backoff: Backoff | None = None):
        self.url, self.address = url, split_url(url)
        self.timeout = float(timeout)
        self.backoff = backoff or Backoff()
        self._grpc, self._exc = _grpc()
        self._client = None
        self._lock = threading.Lock()
        self.reconnects = 0
        self.served = False   # a request succeeded once: an unknown model later means a restarting server

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                try:
                    self._client.close()
                finally:
                    self._client = None

    def _connected(self):
        if self._client is None:
            self._client = self._grpc.InferenceServerClient(self.address)
        return self._client

    def _unavailable(self, why: str) -> BackendUnavailableError:
        if self._client is not None:       # a fresh channel on the next attempt
            try:
                self._client.close()
            except Exception:  # noqa: BLE001  (closing a broken channel)
                pass
            self._client = None
            self.reconnects += 1
        delay = self.backoff.failed()
        err = BackendUnavailableError(f"policy server {self.url} unavailable: {why}; retrying in {delay:.2f} s")
        err.retry_after = delay
        return err

    def infer(self, model: str, inputs: Mapping[str, np.ndarray], params: Mapping[str, Any] | None = None,
              outputs: tuple[str, ...] = (P.ACTION, P.ERROR)) -> dict[str, np.ndarray]:
        """One request -> the named outputs as numpy; typed errors as in the module docstring."""
        with self._lock:
            left = self.backoff.wait_left()
            if left > 0:
                err = BackendUnavailableError(f"policy server {self.url} unavailable (last attempt failed); "
                                              f"next attempt in {left:.2f} s")
                err.retry_after = left
                raise err
            try:
                client = self._connected()
                result = client.infer(model, self._inputs(inputs),
                                      outputs=[self._grpc.InferRequestedOutput(o) for o in outputs],
                                      parameters=dict(params or {}) or None, client_timeout=self.timeout)
            except self._exc as e:
                raise self._mapped(e) from None
            except LeRobotEdgeError:
                raise
            except Exception as e:  # noqa: BLE001  (channel-level failures surface as various types)
                raise self._unavailable(f"{type(e).__name__}: {e}") from e
            self.backoff.ok()
            self.served = True
            return {o: result.as_numpy(o) for o in outputs}

    def _mapped(self, e) -> LeRobotEdgeError:
        status = str(e.status() or "")
        msg = e.message() or str(e)
        if any(s in status for s in UNAVAILABLE) or "Deadline Exceeded" in msg or "failed to connect" in msg:
            return self._unavailable(msg)
        if "unknown model" in msg or "is not found" in msg or "is not ready" in msg:
            if self.served:   # it answered for this model before: a restarting server is loading it again
                return self._unavailable(f"model not loaded (yet): {msg}")
            self.backoff.ok()
            return BundleError(f"the policy server {self.url} has no such model: {msg} (`lerobot-edge serve` names "
                               "it after the bundle directory unless --name is given)")
        self.backoff.ok()   # the server answered
        if any(s in status for s in REFUSED) or "unexpected shape" in msg or "unexpected datatype" in msg:
            return ObservationError(f"the policy server refused the request: {msg}")
        return LeRobotEdgeError(f"the policy server failed the request ({status}): {msg}")

    def _inputs(self, arrays: Mapping[str, np.ndarray]) -> list:
        out = []
        for name, value in arrays.items():
            a = np.asarray(value)
            if a.dtype.kind in "SUO":
                dtype = "BYTES"
                a = np.array([[x.encode() if isinstance(x, str) else bytes(x)] for x in a.reshape(-1)], dtype=object)
            else:
                dtype = TRITON_DTYPES.get(a.dtype)
                if dtype is None:
                    raise ObservationError(f"{name}: dtype {a.dtype} does not travel to the policy server "
                                           "(float32, uint8 or text)")
            i = self._grpc.InferInput(name, list(a.shape), dtype)
            i.set_data_from_numpy(a if dtype == "BYTES" else np.ascontiguousarray(a))
            out.append(i)
        return out

    def info(self, model: str) -> dict:
        """The `<model>_info` payload: {"manifest": …, "action_stats": {…}}."""
        out = self.infer(model + P.INFO_SUFFIX, {P.INFO_INPUT: np.zeros(1, np.int32)}, outputs=(P.INFO_OUTPUT,))
        raw = np.asarray(out[P.INFO_OUTPUT]).reshape(-1)[0]
        return json.loads(raw.decode() if isinstance(raw, (bytes, bytearray)) else raw)

    def ready(self, model: str) -> bool:
        """Whether the server is up and `model` loaded (no exception: False when unreachable)."""
        try:
            with self._lock:
                return bool(self._connected().is_model_ready(model, client_timeout=self.timeout))
        except Exception:  # noqa: BLE001
            return False
