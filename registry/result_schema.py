"""The JSON Schema of results.json, generated from registry/result_types.py.

The committed registry/results.schema.json is this module's output (tests/test_result_schema.py
keeps the two equal); regenerate it after changing a type with:

    .venv/bin/python -m registry.result_schema > registry/results.schema.json
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any, Literal, NotRequired, Required, Union, get_args, get_origin

from registry import result_types

SCHEMA_ID = "https://vertebral-registry.invalid/results.schema.json"
PRIMITIVES = {str: "string", int: "integer", float: "number", bool: "boolean"}
JsonSchema = dict[str, Any]  # a JSON Schema document (not a result)


def schema() -> JsonSchema:
    """The JSON Schema (draft 2020-12) of results.json, every TypedDict as a definition."""
    defs: dict[str, JsonSchema] = {}
    root = of_type(result_types.Results, defs)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "results.json of vertebral-registry",
        "description": (result_types.__doc__ or "").split("\n")[0],
        **root,
        "$defs": dict(sorted(defs.items())),
    }


def of_type(tp: Any, defs: dict[str, JsonSchema]) -> JsonSchema:
    """The schema of one annotation; TypedDicts go to `defs` and are referenced."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (NotRequired, Required, typing.Annotated):
        return of_type(args[0], defs)
    if tp is type(None):
        return {"type": "null"}
    if tp in PRIMITIVES:
        return {"type": PRIMITIVES[tp]}
    if origin in (Union, types.UnionType):
        return union(args, defs)
    if origin is Literal:
        return {"enum": list(args)}
    if origin is list:
        return {"type": "array", "items": of_type(args[0], defs)}
    if origin is dict:
        return mapping(args[0], args[1], defs)
    if typing.is_typeddict(tp):
        return reference(tp, defs)
    raise TypeError(f"no JSON Schema for {tp!r}")


def union(args: tuple[Any, ...], defs: dict[str, JsonSchema]) -> JsonSchema:
    """`X | None` of a primitive as a list of types, anything else as anyOf."""
    parts = [of_type(a, defs) for a in args]
    if all(set(p) == {"type"} and isinstance(p["type"], str) for p in parts):
        return {"type": [p["type"] for p in parts]}
    return {"anyOf": parts}


def mapping(key: Any, value: Any, defs: dict[str, JsonSchema]) -> JsonSchema:
    """dict[str, X]: any keys; dict[Literal[...], X]: exactly the Literal's keys."""
    item = of_type(value, defs)
    if get_origin(key) is not Literal:
        return {"type": "object", "additionalProperties": item}
    names = [str(k) for k in get_args(key)]
    return {
        "type": "object",
        "properties": {name: item for name in names},
        "required": names,
        "additionalProperties": False,
    }


def reference(tp: Any, defs: dict[str, JsonSchema]) -> JsonSchema:
    """A TypedDict as a closed object in `defs` (once), referenced by name."""
    name = tp.__name__
    if name not in defs:
        defs[name] = {}  # recursion guard
        hints = typing.get_type_hints(tp, include_extras=True)
        keys = [k for k in hints if not internal(hints[k])]
        defs[name] = {
            "type": "object",
            "description": " ".join((tp.__doc__ or name).split()),
            "properties": {k: of_type(hints[k], defs) for k in keys},
            "required": [k for k in keys if k in tp.__required_keys__],
            "additionalProperties": False,
        }
    return {"$ref": f"#/$defs/{name}"}


def internal(tp: Any) -> bool:
    """Whether a key is marked internal (never written to results.json)."""
    while get_origin(tp) in (NotRequired, Required):
        tp = get_args(tp)[0]
    return get_origin(tp) is typing.Annotated and result_types.INTERNAL in tp.__metadata__


def schema_text() -> str:
    """The schema as the committed file holds it."""
    return json.dumps(schema(), indent=1) + "\n"


if __name__ == "__main__":
    print(schema_text(), end="")
