"""The JSONPath subset Elasticsearch's `custom` service reads provider answers with.

`$.a.b`, `$.a[*].b`, `$[*].b` (a top-level array, as text-embeddings-inference answers). Unlike
JSONPath, each `[*]` keeps its own list level: `$.data[*].embedding` on two results is
`[[...], [...]]`, and `$.r[*].key[*].a` is a list of lists. Errors use Elasticsearch's messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_DOT_FIELD = re.compile(r"^\.([^.\[]+)(.*)", re.DOTALL)
_WILDCARD = re.compile(r"^\[\*\](.*)", re.DOTALL)


class PathError(ValueError):
    """A path that does not match the answer, or a value of the wrong type."""


@dataclass
class Extracted:
    value: Any
    # Names of the lists met on the way (`data`, `data.embedding`): they name fields in messages.
    list_fields: list[str] = field(default_factory=list)

    def list_field(self, level: int) -> str:
        return self.list_fields[level] if 0 <= level < len(self.list_fields) else "unknown"


def extract(data: Any, path: str) -> Extracted:
    cleaned = path.strip()
    if not cleaned.startswith("$"):
        raise PathError(f"Path [{cleaned}] must start with a dollar sign ($)")
    result = Extracted(None)
    result.value = _navigate(data, cleaned[1:], "", result.list_fields)
    return result


def _note(fields: list[str], name: str) -> None:
    if name not in fields:
        fields.append(name)


def _navigate(current: Any, rest: str, where: str, fields: list[str]) -> Any:
    if current is None or not rest:
        return current
    dot = _DOT_FIELD.match(rest)
    if dot:
        name, after = dot.group(1), dot.group(2)
        if not isinstance(current, dict):
            raise PathError(
                f"Current path [{rest}] matched the dot field pattern but the current object is not a "
                f"map, found invalid type [{_java_type(current)}] instead."
            )
        if current.get(name) is None:
            raise PathError(f"Unable to find field [{name}] in map")
        here = f"{where}.{name}" if where else name
        if not after:
            _note(fields, here)
        return _navigate(current[name], after, here, fields)
    wildcard = _WILDCARD.match(rest)
    if wildcard:
        if not isinstance(current, list):
            raise PathError(
                f"Current path [{rest}] matched the array field pattern but the current object is not a "
                f"list, found invalid type [{_java_type(current)}] instead."
            )
        _note(fields, where)
        items = (_navigate(item, wildcard.group(1), where, fields) for item in current)
        return [item for item in items if item is not None]
    raise PathError(f"Invalid path received [{rest}], unable to extract a field name.")


def _java_type(value: Any) -> str:
    """The type name Elasticsearch's messages show for a JSON value."""
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Double"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "ArrayList"
    if isinstance(value, dict):
        return "HashMap"
    return type(value).__name__


def as_list(value: Any, name: str) -> list[Any]:
    if value is None:
        raise PathError(f"Failed to parse field [{name}], extracted field was null")
    if not isinstance(value, list):
        raise PathError(
            f"Extracted field [{name}] is an invalid type, expected a list but received [{_java_type(value)}]"
        )
    return value


def as_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PathError(f"Unable to convert field [{name}] of type [{_java_type(value)}] to Number")
    return float(value)


def as_string(value: Any, name: str) -> str:
    if value is None:
        raise PathError(f"Failed to parse field [{name}], extracted field was null")
    if not isinstance(value, str):
        raise PathError(f"Unable to convert field [{name}] of type [{_java_type(value)}] to [String]")
    return value


def each(items: list[Any], convert: Any, name: str) -> list[Any]:
    """`convert` applied to every entry, naming the failing entry as Elasticsearch does."""
    out = []
    for i, item in enumerate(items):
        try:
            out.append(convert(item, name))
        except PathError as exc:
            raise PathError(f"Failed to parse list entry [{i}], error: {exc}") from exc
    return out
