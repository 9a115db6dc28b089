"""Structural check of a manifest's fields (types and shapes), so a malformed or hostile manifest is a
BundleError naming the field — never a KeyError or TypeError from deep inside the runtime.

A spec is a type (or tuple of types), a list `[spec]` (a list of such), a dict whose keys are required
(prefix "?" for optional; the key `str` means "any key"), or a callable returning an error text or None.
Extra keys are allowed here; unknown top-level and graph fields are refused by bundle.py.
"""

from __future__ import annotations

from typing import Any

from .errors import BundleError

NUM = (int, float)


def pos_int(v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) and v >= 1 else "a positive integer"


def dim(v: Any) -> str | None:
    return None if isinstance(v, str) or pos_int(v) is None else "a positive integer or an axis name"


def one_of(*values: str):
    def check(v):
        return None if v in values else f"one of {list(values)}"
    return check


def nullable(spec):
    def check(v):
        return None if v is None else _error(v, spec, "")
    return check


IO = {"name": str, "shape": [dim], "?dtype": str}
TOLERANCE = {str: {"atol": NUM, "min_cosine": NUM}}
GRAPH = {"name": str, "file": str, "inputs": [IO], "outputs": [IO], "?tolerance": TOLERANCE,
         "?artifacts": {str: str}, "?flops": nullable(int)}
MANIFEST = {
    "format": str, "schema_version": [int], "lerobot_edge_version": str, "policy": {"type": str},
    "source": dict, "target": str, "precision": str, "opset": int, "files": {str: [str]}, "graphs": [GRAPH],
    "observations": {str: {"kind": one_of("image", "state", "env_state"), "shape": [pos_int],
                           "graph_input": str}},
    "action": {"key": str, "shape": [pos_int]}, "normalization": {str: str}, "runtime": {"kind": str},
    "validation": dict, "?cameras": [str], "?rename_map": {str: str}, "?noise_shape": nullable([dim]),
}


def _error(value: Any, spec: Any, where: str) -> str | None:
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return f"{where or 'manifest'}: expected an object"
        for key, sub in spec.items():
            if key is str:
                for k, v in value.items():
                    if err := _error(v, sub, f"{where}.{k}" if where else str(k)):
                        return err
                continue
            name = key.lstrip("?")
            if name not in value:
                if key.startswith("?"):
                    continue
                return f"{where + '.' if where else ''}{name}: missing"
            if err := _error(value[name], sub, f"{where}.{name}" if where else name):
                return err
        return None
    if isinstance(spec, list):
        if not isinstance(value, list):
            return f"{where}: expected a list"
        for i, v in enumerate(value):
            if err := _error(v, spec[0], f"{where}[{i}]"):
                return err
        return None
    if isinstance(spec, (type, tuple)):
        types = spec if isinstance(spec, tuple) else (spec,)
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        return None if ok else f"{where}: expected {' or '.join(t.__name__ for t in types)}, got {type(value).__name__}"
    err = spec(value)
    return f"{where}: expected {err}, got {value!r:.40}" if err else None


def check_manifest(m: dict) -> None:
    err = _error(m, MANIFEST, "")
    if err:
        raise BundleError(f"malformed manifest: {err}")
