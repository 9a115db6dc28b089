"""External-data references of an ONNX file, read straight from its protobuf wire format (no onnx package on
the robot). A bundle is untrusted input: every referenced file must be a plain path inside the bundle, listed
in its checksums, before any backend opens the graph."""

from __future__ import annotations

from pathlib import Path

# field numbers (onnx.proto3)
MODEL_GRAPH = 7
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_SPARSE_INIT = 1, 5, 15
NODE_ATTRIBUTE = 5
ATTR_T, ATTR_G, ATTR_TENSORS, ATTR_GRAPHS = 5, 6, 10, 11
TENSOR_EXTERNAL_DATA = 13
ENTRY_KEY, ENTRY_VALUE = 1, 2


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated or malformed protobuf varint")
        b = buf[i]
        result |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: memoryview):
    """Yield (field number, length-delimited payload or None) for each field of a message."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, i = _varint(buf, i)
            yield field, None
        elif wire == 1:
            i += 8
            yield field, None
        elif wire == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise ValueError("truncated protobuf field")
            yield field, buf[i:i + n]
            i += n
        elif wire == 5:
            i += 4
            yield field, None
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _tensor_locations(t: memoryview) -> list[str]:
    out = []
    for f, v in _fields(t):
        if f == TENSOR_EXTERNAL_DATA and v is not None:
            key, value = None, None
            for k, val in _fields(v):
                if k == ENTRY_KEY and val is not None:
                    key = bytes(val).decode("utf-8", "replace")
                elif k == ENTRY_VALUE and val is not None:
                    value = bytes(val).decode("utf-8", "replace")
            if key == "location" and value is not None:
                out.append(value)
    return out


def _graph_locations(g: memoryview) -> list[str]:
    out = []
    for f, v in _fields(g):
        if v is None:
            continue
        if f == GRAPH_INITIALIZER:
            out += _tensor_locations(v)
        elif f == GRAPH_NODE:
            for nf, attr in _fields(v):
                if nf == NODE_ATTRIBUTE and attr is not None:
                    for af, av in _fields(attr):
                        if av is not None and af in (ATTR_T, ATTR_TENSORS):
                            out += _tensor_locations(av)
                        elif av is not None and af in (ATTR_G, ATTR_GRAPHS):
                            out += _graph_locations(av)
    return out


def external_data_locations(path: str | Path) -> list[str]:
    """Every external-data `location` an ONNX model file references (deduplicated, in order)."""
    data = memoryview(Path(path).read_bytes())
    locations = []
    for f, v in _fields(data):
        if f == MODEL_GRAPH and v is not None:
            locations += _graph_locations(v)
    return list(dict.fromkeys(locations))
