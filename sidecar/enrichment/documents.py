"""Dotted paths in JSON documents: read, write, and apply a set of computed values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sidecar.errors import DocumentError

MISSING = object()


def get_path(doc: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (a literal dotted key wins), or `MISSING`."""
    if path in doc:
        return doc[path]
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return MISSING
        node = node[part]
    return node


def set_path(doc: dict[str, Any], path: str, value: Any) -> DocumentError | None:
    """Write `value` at a dotted path, creating objects; a non-object on the way is a conflict."""
    parts = path.split(".")
    node = doc
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return DocumentError("target_conflict", f"field [{part}] of target [{path}] is not an object")
        node = child
    node[parts[-1]] = value
    return None


def apply_additions(doc: dict[str, Any], additions: Mapping[str, Any]) -> DocumentError | None:
    """Write the additions into `doc` in place (objects created as needed)."""
    for path, value in additions.items():
        problem = set_path(doc, path, value)
        if problem is not None:
            return problem
    return None


def nested(additions: Mapping[str, Any]) -> dict[str, Any]:
    """The additions as one partial document (for an `update` operation)."""
    out: dict[str, Any] = {}
    apply_additions(out, additions)
    return out
