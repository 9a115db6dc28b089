"""The manifest's structure (manifest.schema.json, JSON Schema 2020-12, validated by `jsonschema`), so a malformed
or hostile manifest is a BundleError naming the field, never a KeyError or TypeError deep inside the runtime.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

from .errors import BundleError

SCHEMA_VERSION = (1, 0)   # the (major, minor) that manifest.schema.json describes
_TYPES = {"integer": "int", "number": "number", "string": "str", "array": "list", "object": "object",
          "null": "null", "boolean": "bool"}


@cache
def _validator():
    """Compiled once, at the first manifest read (jsonschema is imported only then)."""
    import jsonschema

    schema = json.loads(files(__package__).joinpath("manifest.schema.json").read_text(encoding="utf-8"))
    base = jsonschema.Draft202012Validator
    # JSON Schema counts 1.0 as an integer; shapes and opsets reach numpy and onnx, so only a JSON integer is one
    ints = base.TYPE_CHECKER.redefine("integer", lambda _, v: isinstance(v, int) and not isinstance(v, bool))
    return jsonschema.validators.extend(base, type_checker=ints)(schema)


def check_manifest(m: dict) -> None:
    """Raise a BundleError for the most relevant schema violation of `m` (jsonschema's best_match)."""
    from jsonschema.exceptions import best_match

    if (err := best_match(_validator().iter_errors(m))) is not None:
        raise BundleError(f"manifest.json: {_message(err)}")


def _message(err) -> str:
    """'<field path>: <what was expected>, got <what was there>' for one jsonschema ValidationError."""
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path).lstrip(".")
    value, kind, schema = err.instance, err.validator, err.schema
    if kind == "required":
        return f"{where + '.' if where else ''}{next(k for k in err.validator_value if k not in value)}: missing"
    if kind == "additionalProperties":
        unknown = sorted(set(value) - set(schema.get("properties", {})))
        return (f"{where or 'top level'}: unknown field(s) {unknown} for schema {SCHEMA_VERSION[0]}."
                f"{SCHEMA_VERSION[1]} (written by a newer lerobot-edge?)")
    got = f"{value!r:.40}"
    if kind == "enum":
        expected = f"one of {schema['enum']}"
    elif "description" in schema:
        expected = schema["description"]
    elif kind == "type":
        types = [err.validator_value] if isinstance(err.validator_value, str) else err.validator_value
        expected, got = " or ".join(_TYPES[t] for t in types), type(value).__name__
    else:
        return f"{where}: {err.message:.200}"
    return f"{where}: expected {expected}, got {got}"
