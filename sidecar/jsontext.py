"""JSON request text read as leniently as the engines read it, and as strictly as Python needs.

Elasticsearch and OpenSearch parse JSON with comments allowed (`/* */` and `//`), so a body or
document with comments is valid there and must be valid here. What Python cannot carry safely is
refused with a `ValueError` whose message says why:

- invalid UTF-8, including encoded surrogates (`ED A0 80`), and lone surrogate escapes (`"\\udc00"`):
  such text cannot be encoded again, tokenised or forwarded;
- nesting deeper than `MAX_DEPTH`: Python's parser and the code walking documents recurse.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

# Elasticsearch's parser (Jackson) stops at 1,000 levels; this is below Python's recursion limit
# with room for the frames of the code that copies and merges documents.
MAX_DEPTH = 256

# A string, or a comment outside strings: comments become one space, strings stay as they are.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|//[^\n]*|/\*.*?\*/', re.DOTALL)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

LONE_SURROGATE = "invalid text: a lone surrogate (\\uD800-\\uDFFF without its pair)"

PairsHook = Callable[[list[tuple[str, Any]]], Any]


def _uncommented(text: str) -> str:
    return _TOKENS.sub(lambda m: m.group(0) if m.group(0).startswith('"') else " ", text)


def loads(
    raw: bytes | str,
    *,
    object_pairs_hook: PairsHook | None = None,
    parse_constant: Callable[[str], Any] | None = None,
) -> Any:
    """The JSON value of `raw`; `ValueError` for invalid JSON, invalid text or too deep nesting.
    `parse_constant` is `json.loads`'s (called for NaN and Infinity)."""
    return parse(raw, object_pairs_hook=object_pairs_hook, parse_constant=parse_constant)[0]


def parse(
    raw: bytes | str,
    *,
    object_pairs_hook: PairsHook | None = None,
    parse_constant: Callable[[str], Any] | None = None,
) -> tuple[Any, bool]:
    """Like `loads`; second, whether the text needed leniency (it holds comments)."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValueError(f"invalid UTF-8 at byte [{exc.start}]") from None
    else:
        text = raw
    if text.count("{") + text.count("[") > MAX_DEPTH:  # cheap bound: deeper nesting needs more brackets
        _check_depth(text)
    lenient = False
    try:
        try:
            value = json.loads(text, object_pairs_hook=object_pairs_hook, parse_constant=parse_constant)
        except json.JSONDecodeError:
            if "/" not in text:
                raise
            value = json.loads(
                _uncommented(text), object_pairs_hook=object_pairs_hook, parse_constant=parse_constant
            )
            lenient = True
    except RecursionError:
        raise ValueError(f"nesting deeper than [{MAX_DEPTH}] levels") from None
    if _SURROGATE_ESCAPE.search(text) and not encodable(value):
        raise ValueError(LONE_SURROGATE)
    return value, lenient


def _check_depth(text: str) -> None:
    """Raise when brackets outside strings and comments nest deeper than `MAX_DEPTH`."""
    depth = 0
    for match in re.finditer(r'"(?:[^"\\]|\\.)*"|//[^\n]*|/\*.*?\*/|[\[\]{}]', text, re.DOTALL):
        token = match.group(0)
        if token in ("{", "["):
            depth += 1
            if depth > MAX_DEPTH:
                raise ValueError(f"nesting deeper than [{MAX_DEPTH}] levels")
        elif token in ("}", "]"):
            depth -= 1


def encodable(value: Any) -> bool:
    """Whether `value` can be written as UTF-8 JSON (it holds no lone surrogate)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
