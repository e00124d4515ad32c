"""Pieces of the unified (OpenAI-format) chat request that every chat translation reads the same way:
Anthropic's messages, Bedrock's Converse and Gemini's contents."""

from __future__ import annotations

import json
from typing import Any


def content_text(content: Any) -> str:
    """A message's content: a string, or a list of `{"type": "text", "text"}` parts."""
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def tool_arguments(arguments: Any) -> Any:
    """A tool call's arguments as an object: the JSON string decoded, kept whole when it is not JSON."""
    if isinstance(arguments, str):
        try:
            return json.loads(arguments) if arguments else {}
        except ValueError:
            return {"arguments": arguments}
    return arguments or {}
