"""External-data references of an ONNX file, read straight from its protobuf wire format (no onnx package on
the robot). A bundle is untrusted input: every referenced file must be a plain path inside the bundle, listed
in its checksums, before any backend opens the graph."""

from __future__ import annotations

from pathlib import Path

# field numbers (onnx.proto3)
MODEL_GRAPH, MODEL_OPSET_IMPORT, MODEL_FUNCTIONS = 7, 8, 25
OPSET_DOMAIN, FUNCTION_DOMAIN = 1, 10
# operator domains ONNX Runtime and OpenVINO implement themselves; a model-local function may add its own
STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")
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


def _tensor_refs(t: memoryview) -> list[tuple[str, int, int | None]]:
    """(location, offset, length or None) of a tensor stored as external data; [] for an inline tensor."""
    entries: dict[str, str] = {}
    for f, v in _fields(t):
        if f == TENSOR_EXTERNAL_DATA and v is not None:
            key, value = None, None
            for k, val in _fields(v):
                if k == ENTRY_KEY and val is not None:
                    key = bytes(val).decode("utf-8", "replace")
                elif k == ENTRY_VALUE and val is not None:
                    value = bytes(val).decode("utf-8", "replace")
            if key is not None and value is not None:
                entries[key] = value
    if "location" not in entries:
        return []
    try:
        offset = int(entries.get("offset", "0"))
        length = int(entries["length"]) if "length" in entries else None
    except ValueError as e:
        raise ValueError(f"external data of {entries['location']!r}: offset/length are not integers") from e
    if offset < 0 or (length is not None and length < 0):
        raise ValueError(f"external data of {entries['location']!r}: negative offset or length")
    return [(entries["location"], offset, length)]


def _graph_refs(g: memoryview) -> list[tuple[str, int, int | None]]:
    out = []
    for f, v in _fields(g):
        if v is None:
            continue
        if f == GRAPH_INITIALIZER:
            out += _tensor_refs(v)
        elif f == GRAPH_NODE:
            for nf, attr in _fields(v):
                if nf == NODE_ATTRIBUTE and attr is not None:
                    for af, av in _fields(attr):
                        if av is not None and af in (ATTR_T, ATTR_TENSORS):
                            out += _tensor_refs(av)
                        elif av is not None and af in (ATTR_G, ATTR_GRAPHS):
                            out += _graph_refs(av)
    return out


def _string(message: memoryview, field: int) -> str:
    return next((bytes(v).decode("utf-8", "replace") for f, v in _fields(message) if f == field and v is not None),
                "")


def scan(path: str | Path) -> tuple[list[tuple[str, int, int | None]], list[str]]:
    """-> every external-data reference (location, offset, length or None) of an ONNX model file, and the
    operator domains it imports that neither a standard runtime nor one of its own functions defines."""
    data = memoryview(Path(path).read_bytes())
    refs, imported, local = [], [], set()
    for f, v in _fields(data):
        if v is None:
            continue
        if f == MODEL_GRAPH:
            refs += _graph_refs(v)
        elif f == MODEL_OPSET_IMPORT:
            imported.append(_string(v, OPSET_DOMAIN))
        elif f == MODEL_FUNCTIONS:
            local.add(_string(v, FUNCTION_DOMAIN))
    unknown = [d for d in dict.fromkeys(imported) if d not in STANDARD_DOMAINS and d not in local]
    return refs, unknown


def external_data_refs(path: str | Path) -> list[tuple[str, int, int | None]]:
    """Every external-data reference of an ONNX model file: (location, offset, length or None)."""
    return scan(path)[0]


def external_data_locations(path: str | Path) -> list[str]:
    """Every external-data `location` an ONNX model file references (deduplicated, in order)."""
    return list(dict.fromkeys(loc for loc, _, _ in external_data_refs(path)))
