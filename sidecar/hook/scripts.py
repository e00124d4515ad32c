"""Scripted partial updates that replace the enriched fields instead of merging into them.

A partial `doc` update merges objects recursively, so a new `rank_features` object would keep the
stale tokens of the old one (and OpenSearch refuses `null` for such a field). A small Painless script
assigns each path instead, creating parent objects as needed; the values travel as parameters, so
the script text depends only on the paths and the engine compiles it once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _literal(name: str) -> str:
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


def replacement_script(additions: Mapping[str, Any]) -> dict[str, Any]:
    """`{"source", "lang", "params"}` setting every dotted path of `additions` to its value; a
    None value removes the path instead (where its parents are objects)."""
    lines: list[str] = []
    params: dict[str, Any] = {}
    ensured: set[str] = set()
    for n, (path, value) in enumerate(sorted(additions.items())):
        parts = path.split(".")
        node = "ctx._source"
        if value is None:
            guards = ["ctx._source instanceof Map"]
            for part in parts[:-1]:
                node += f"[{_literal(part)}]"
                guards.append(f"{node} instanceof Map")
            lines.append(f"if ({' && '.join(guards)}) {{ {node}.remove({_literal(parts[-1])}); }}")
            continue
        for depth, part in enumerate(parts[:-1]):
            node += f"[{_literal(part)}]"
            prefix = ".".join(parts[: depth + 1])
            if prefix not in ensured:
                ensured.add(prefix)
                lines.append(f"if (!({node} instanceof Map)) {{ {node} = new HashMap(); }}")
        lines.append(f"{node}[{_literal(parts[-1])}] = params['p{n}'];")
        params[f"p{n}"] = value
    return {"source": " ".join(lines), "lang": "painless", "params": params}
