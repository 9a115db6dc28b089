"""The pickles of LeRobot's async-inference protocol (lerobot.async_inference), read and written without
LeRobot's classes and without torch.

LeRobot's robot_client sends pickled `TimedObservation` / `RemotePolicyConfig` dataclasses and expects a
pickled `list[TimedAction]` whose actions are torch tensors. Reading: a restricted Unpickler that maps those
two classes to plain stand-ins and allows numpy's array reconstruction and nothing else (LeRobot's own server
unpickles anything; ours refuses other globals with an ObservationError). Writing: the pickle opcodes of
`[TimedAction(timestamp, timestep, action=torch.tensor([...]).float())]`, which the client's unpickler turns
into LeRobot's dataclass and a float32 CPU tensor.
"""

from __future__ import annotations

import io
import pickle
import struct
from typing import Any

import numpy as np

from ..errors import ObservationError

HELPERS = "lerobot.async_inference.helpers"


class _Record:
    """A LeRobot dataclass as unpickled here: its fields as attributes (pickle's BUILD sets __dict__)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {sorted(vars(self))}>"


class TimedObservation(_Record):
    timestamp: float
    timestep: int
    observation: dict
    must_go: bool = False


class RemotePolicyConfig(_Record):
    policy_type: str
    pretrained_name_or_path: str
    lerobot_features: dict
    actions_per_chunk: int
    device: str = "cpu"
    rename_map: dict = {}


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """numpy's array/scalar reconstruction, under the module names numpy 1.x and 2.x pickle them with."""
    try:
        from numpy._core import multiarray as ma, numeric as nm        # numpy >= 2
    except ImportError:
        from numpy.core import multiarray as ma, numeric as nm         # numpy 1.x
    out: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for pkg in ("numpy.core", "numpy._core"):
        out[(f"{pkg}.multiarray", "_reconstruct")] = ma._reconstruct
        out[(f"{pkg}.multiarray", "scalar")] = ma.scalar
        if hasattr(nm, "_frombuffer"):                                 # pickle protocol 5
            out[(f"{pkg}.numeric", "_frombuffer")] = nm._frombuffer
    return out


class _Unpickler(pickle.Unpickler):
    ALLOWED = {(HELPERS, "TimedObservation"): TimedObservation, (HELPERS, "RemotePolicyConfig"): RemotePolicyConfig,
               ("builtins", "set"): set, ("builtins", "frozenset"): frozenset, ("builtins", "slice"): slice}

    def find_class(self, module: str, name: str) -> Any:
        found = self.ALLOWED.get((module, name)) or _numpy_globals().get((module, name))
        if found is None:
            raise ObservationError(f"the robot client sent a pickle referencing {module}.{name}, which the "
                                   "lerobot-edge policy server does not accept (observations are numpy arrays, "
                                   "numbers and strings)")
        return found


def loads(data: bytes, expected: type) -> Any:
    """Unpickle one message of the protocol; anything but an `expected` instance is an ObservationError."""
    try:
        obj = _Unpickler(io.BytesIO(data)).load()
    except ObservationError:
        raise
    except Exception as e:  # noqa: BLE001  (a malformed pickle)
        raise ObservationError(f"unreadable {expected.__name__} pickle: {type(e).__name__}: {e}") from e
    if not isinstance(obj, expected):
        raise ObservationError(f"expected a {expected.__name__}, got {type(obj).__name__}")
    return obj


# -- writing: opcodes of protocol 4 ----------------------------------------------------------------------------
def _str(s: str) -> bytes:
    b = s.encode()
    return (pickle.SHORT_BINUNICODE + bytes([len(b)]) + b) if len(b) < 256 else \
        (pickle.BINUNICODE + struct.pack("<I", len(b)) + b)


def _global(module: str, name: str) -> bytes:
    return _str(module) + _str(name) + pickle.STACK_GLOBAL


def _float(x: float) -> bytes:
    return pickle.BINFLOAT + struct.pack(">d", float(x))


def _int(x: int) -> bytes:
    return pickle.BININT + struct.pack("<i", int(x)) if -2**31 <= x < 2**31 else \
        pickle.LONG1 + bytes([8]) + int(x).to_bytes(8, "little", signed=True)


def _tensor(row: np.ndarray) -> bytes:
    """torch.Tensor.float(torch.tensor([floats])): a float32 CPU tensor, exact for float32 values."""
    values = b"".join(_float(v) for v in np.asarray(row, np.float32).reshape(-1).tolist())
    floats = pickle.EMPTY_LIST + (pickle.MARK + values + pickle.APPENDS if values else b"")
    return (_global("torch", "Tensor.float") + _global("torch", "tensor") + floats + pickle.TUPLE1 + pickle.REDUCE
            + pickle.TUPLE1 + pickle.REDUCE)


def dumps_timed_actions(chunk: np.ndarray, t0: float, dt: float, i0: int) -> bytes:
    """chunk (T, A) robot units -> the pickle of LeRobot's `list[TimedAction]`: action i at t0 + i * dt,
    timestep i0 + i (what LeRobot's PolicyServer._time_action_chunk builds)."""
    items = []
    for i, row in enumerate(np.asarray(chunk, np.float32)):
        state = (pickle.EMPTY_DICT + pickle.MARK + _str("timestamp") + _float(t0 + i * dt) + _str("timestep")
                 + _int(i0 + i) + _str("action") + _tensor(row) + pickle.SETITEMS)
        items.append(_global(HELPERS, "TimedAction") + pickle.EMPTY_TUPLE + pickle.NEWOBJ + state + pickle.BUILD)
    body = pickle.EMPTY_LIST + (pickle.MARK + b"".join(items) + pickle.APPENDS if items else b"")
    return pickle.PROTO + bytes([4]) + body + pickle.STOP
