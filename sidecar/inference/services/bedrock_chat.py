"""Elasticsearch's unified chat-completion request as one Amazon Bedrock Converse request, and the
Converse answer as one unified chunk (the `amazonbedrock` service's `chat_completion` task).

Request: `system`/`developer` messages -> `system: [{"text"}]`; user and assistant messages ->
`{"role", "content": [{"text"}]}`; an assistant's `tool_calls` -> `toolUse` blocks; a `tool`
message -> a user `toolResult` block; `tools` -> `toolConfig.tools[].toolSpec` (`parameters` as
`inputSchema.json`), `tool_choice` -> `toolConfig.toolChoice` (`auto`, `any`, one `tool`);
`max_completion_tokens`, `temperature`, `top_p`, `stop` -> `inferenceConfig`.

Answer: `{"output": {"message": {"content": [{"text"} | {"toolUse": {"toolUseId", "name",
"input"}}]}}, "stopReason", "usage": {"inputTokens", "outputTokens", "totalTokens"}}`. Bedrock
streams through ConverseStream's AWS binary event stream, which is not implemented here: the
whole answer comes back as one chunk.
"""

from __future__ import annotations

import json
from typing import Any

from sidecar.inference.services.chat_messages import content_text, tool_arguments

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


def converse_chat_body(request: dict[str, Any], task_settings: dict[str, Any]) -> dict[str, Any]:
    system: list[dict[str, str]] = []
    messages: list[dict[str, Any]] = []
    for message in request["messages"]:
        role = message.get("role")
        if role in ("system", "developer"):
            system.append({"text": content_text(message.get("content"))})
            continue
        if role == "tool":
            result = {
                "toolUseId": str(message.get("tool_call_id", "")),
                "content": [{"text": content_text(message.get("content"))}],
            }
            messages.append({"role": "user", "content": [{"toolResult": result}]})
            continue
        blocks: list[dict[str, Any]] = []
        if content_text(message.get("content")):
            blocks.append({"text": content_text(message.get("content"))})
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            use = {
                "toolUseId": call.get("id"),
                "name": function.get("name"),
                "input": tool_arguments(function.get("arguments")),
            }
            blocks.append({"toolUse": use})
        messages.append({"role": "assistant" if role == "assistant" else "user", "content": blocks})
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = system
    config: dict[str, Any] = {}
    max_tokens = request.get("max_completion_tokens") or task_settings.get("max_new_tokens")
    if max_tokens is not None:
        config["maxTokens"] = max_tokens
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP")):
        value = request.get(ours) if request.get(ours) is not None else task_settings.get(ours)
        if value is not None:
            config[theirs] = value
    if request.get("stop"):
        stop = request["stop"]
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if config:
        body["inferenceConfig"] = config
    if request.get("tools"):
        specs = []
        for tool in request["tools"]:
            function = tool.get("function") or {}
            spec = {
                "name": function.get("name"),
                "inputSchema": {"json": function.get("parameters") or {"type": "object"}},
            }
            if function.get("description"):
                spec["description"] = function["description"]
            specs.append({"toolSpec": spec})
        tool_config: dict[str, Any] = {"tools": specs}
        choice = request.get("tool_choice")
        if choice == "auto":
            tool_config["toolChoice"] = {"auto": {}}
        elif choice == "required":
            tool_config["toolChoice"] = {"any": {}}
        elif isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
            tool_config["toolChoice"] = {"tool": {"name": choice["function"]["name"]}}
        body["toolConfig"] = tool_config
    return body


def converse_chunk(answer: dict[str, Any], model: str) -> dict[str, Any]:
    """A Converse answer as one unified chunk (KeyError/TypeError when it is not one)."""
    blocks = answer["output"]["message"]["content"]
    delta: dict[str, Any] = {"role": "assistant"}
    text = "".join(str(b["text"]) for b in blocks if "text" in b)
    if text:
        delta["content"] = text
    uses = [b["toolUse"] for b in blocks if isinstance(b.get("toolUse"), dict)]
    if uses:
        delta["tool_calls"] = [
            {
                "index": i,
                "id": use.get("toolUseId"),
                "type": "function",
                "function": {"name": use.get("name"), "arguments": json.dumps(use.get("input") or {})},
            }
            for i, use in enumerate(uses)
        ]
    reason = str(answer.get("stopReason") or "end_turn")
    chunk: dict[str, Any] = {
        "choices": [{"delta": delta, "index": 0, "finish_reason": _STOP_REASONS.get(reason, reason)}],
        "model": model,
        "object": "chat.completion.chunk",
    }
    usage = answer.get("usage")
    if isinstance(usage, dict):
        chunk["usage"] = {
            "completion_tokens": usage.get("outputTokens", 0),
            "prompt_tokens": usage.get("inputTokens", 0),
            "total_tokens": usage.get("totalTokens", 0),
        }
    return chunk
