"""Elasticsearch's unified chat-completion request in Anthropic's Messages format, and Anthropic's
streamed events back as unified chunks (the `anthropic` service's `chat_completion` task).

Request: `system`/`developer` messages become `system`; an assistant's `tool_calls` become
`tool_use` blocks; a `tool` message becomes a user `tool_result` block; `tools` (`parameters` as
`input_schema`), `tool_choice` (`auto`/`required`/`none`/one function), `stop` (`stop_sequences`),
`temperature`, `top_p`; `max_tokens` is the request's `max_completion_tokens`, else the required
`max_tokens` task setting (as for `completion`).

Events: `message_start` (id, model, input tokens), `content_block_start` (a `tool_use` block opens a
tool call), `content_block_delta` (`text_delta` -> `delta.content`, `input_json_delta` -> the tool
call's `arguments`), `message_delta` (stop reason, output tokens), `message_stop` (end).
"""

from __future__ import annotations

from typing import Any

from sidecar.inference.services.chat_messages import content_text, tool_arguments

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}
_CHOICES = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}


def anthropic_chat_body(
    request: dict[str, Any], task_settings: dict[str, Any], model: str | None
) -> dict[str, Any]:
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for message in request["messages"]:
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(content_text(message.get("content")))
        elif role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": str(message.get("tool_call_id", "")),
                "content": content_text(message.get("content")),
            }
            messages.append({"role": "user", "content": [result]})
        elif message.get("tool_calls"):
            blocks: list[dict[str, Any]] = []
            if content_text(message.get("content")):
                blocks.append({"type": "text", "text": content_text(message.get("content"))})
            for call in message["tool_calls"]:
                function = call.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id"),
                        "name": function.get("name"),
                        "input": tool_arguments(function.get("arguments")),
                    }
                )
            messages.append({"role": "assistant", "content": blocks})
        else:
            messages.append(
                {
                    "role": "assistant" if role == "assistant" else "user",
                    "content": content_text(message.get("content")),
                }
            )
    body: dict[str, Any] = {
        "model": request.get("model") or model,
        "max_tokens": request.get("max_completion_tokens") or task_settings.get("max_tokens"),
        "messages": messages,
        "stream": True,
    }
    if system:
        body["system"] = "\n\n".join(system)
    for key in ("temperature", "top_p", "top_k"):
        value = request.get(key) if request.get(key) is not None else task_settings.get(key)
        if value is not None:
            body[key] = value
    if request.get("stop"):
        stop = request["stop"]
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if request.get("tools"):
        tools = []
        for tool in request["tools"]:
            function = tool.get("function") or {}
            entry = {
                "name": function.get("name"),
                "input_schema": function.get("parameters") or {"type": "object"},
            }
            if function.get("description"):
                entry["description"] = function["description"]
            tools.append(entry)
        body["tools"] = tools
    choice = request.get("tool_choice")
    if isinstance(choice, str) and choice in _CHOICES:
        body["tool_choice"] = _CHOICES[choice]
    elif isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
        body["tool_choice"] = {"type": "tool", "name": choice["function"]["name"]}
    return body


class ChunkTranslator:
    """Anthropic's events of one streamed message as unified chunks (None for events that carry
    nothing a chunk shows: pings, block stops)."""

    def __init__(self) -> None:
        self.head: dict[str, Any] = {"object": "chat.completion.chunk"}
        self.input_tokens = 0
        self.tool_positions: dict[int, int] = {}  # content block index -> tool call index

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice: dict[str, Any] = {"delta": delta, "index": 0}
        if finish:
            choice["finish_reason"] = finish
        return {**self.head, "choices": [choice]}

    def translate(self, event: dict[str, Any]) -> dict[str, Any] | None:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.head.update({k: message[k] for k in ("id", "model") if message.get(k)})
            self.input_tokens = int((message.get("usage") or {}).get("input_tokens") or 0)
            return self._chunk({"role": "assistant"})
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") != "tool_use":
                return None
            position = self.tool_positions.setdefault(int(event.get("index", 0)), len(self.tool_positions))
            call = {
                "index": position,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return self._chunk({"tool_calls": [call]})
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                return self._chunk({"content": str(delta.get("text", ""))})
            if delta.get("type") == "input_json_delta":
                position = self.tool_positions.get(int(event.get("index", 0)), 0)
                call = {"index": position, "function": {"arguments": str(delta.get("partial_json", ""))}}
                return self._chunk({"tool_calls": [call]})
            return None
        if kind == "message_delta":
            reason = (event.get("delta") or {}).get("stop_reason")
            chunk = self._chunk({}, _STOP_REASONS.get(str(reason), str(reason)) if reason else None)
            output = int((event.get("usage") or {}).get("output_tokens") or 0)
            chunk["usage"] = {
                "completion_tokens": output,
                "prompt_tokens": self.input_tokens,
                "total_tokens": output + self.input_tokens,
            }
            return chunk
        return None
