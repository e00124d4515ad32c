"""Elasticsearch's unified chat-completion request in Gemini's `streamGenerateContent` format, and
Gemini's streamed answers back as unified chunks (Vertex AI's `chat_completion` task).

Request: `messages` become `contents` (`assistant` -> role `model`; `system`/`developer` ->
`systemInstruction`; an assistant's `tool_calls` -> `functionCall` parts; a `tool` message ->
a `functionResponse` part named after the call it answers), `tools` -> `functionDeclarations`,
`tool_choice` -> `toolConfig.functionCallingConfig`, and `max_completion_tokens`, `temperature`,
`top_p`, `stop` -> `generationConfig`.

Answer: server-sent `GenerateContentResponse` objects (`?alt=sse`), the last one carrying the
candidates' `finishReason`; there is no `[DONE]`. Text parts become `delta.content`,
`functionCall` parts `delta.tool_calls`, `usageMetadata` the chunk's `usage`.
"""

from __future__ import annotations

import json
from typing import Any

from sidecar.inference.services.chat_messages import content_text, tool_arguments

_FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}
_CHOICE_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def gemini_chat_body(request: dict[str, Any], task_settings: dict[str, Any]) -> dict[str, Any]:
    system: list[dict[str, str]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    for message in request["messages"]:
        role = message.get("role")
        if role in ("system", "developer"):
            system.append({"text": content_text(message.get("content"))})
            continue
        parts: list[dict[str, Any]] = []
        if role == "tool":
            call = str(message.get("tool_call_id", ""))
            response = {"content": content_text(message.get("content"))}
            parts.append({"functionResponse": {"name": call_names.get(call, call), "response": response}})
            contents.append({"role": "user", "parts": parts})
            continue
        text = content_text(message.get("content"))
        if text:
            parts.append({"text": text})
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            call_names[str(call.get("id", ""))] = str(function.get("name", ""))
            parts.append(
                {
                    "functionCall": {
                        "name": function.get("name"),
                        "args": tool_arguments(function.get("arguments")),
                    }
                }
            )
        contents.append({"role": "model" if role == "assistant" else "user", "parts": parts})
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    if request.get("tools"):
        declarations = []
        for tool in request["tools"]:
            function = tool.get("function") or {}
            declaration = {k: function[k] for k in ("name", "description", "parameters") if k in function}
            declarations.append(declaration)
        body["tools"] = [{"functionDeclarations": declarations}]
    choice = request.get("tool_choice")
    if isinstance(choice, str) and choice in _CHOICE_MODES:
        body["toolConfig"] = {"functionCallingConfig": {"mode": _CHOICE_MODES[choice]}}
    elif isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
        config = {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
        body["toolConfig"] = {"functionCallingConfig": config}
    generation: dict[str, Any] = {}
    max_tokens = request.get("max_completion_tokens") or task_settings.get("max_tokens")
    if max_tokens is not None:
        generation["maxOutputTokens"] = max_tokens
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP")):
        if request.get(ours) is not None:
            generation[theirs] = request[ours]
    if request.get("stop"):
        stop = request["stop"]
        generation["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    budget = (task_settings.get("thinking_config") or {}).get("thinking_budget")
    if budget is not None:
        generation["thinkingConfig"] = {"thinkingBudget": budget}
    if generation:
        body["generationConfig"] = generation
    return body


def gemini_finished(event: Any) -> bool:
    """Whether a streamed response is the last one (its candidates carry a finish reason)."""
    return isinstance(event, dict) and any(
        isinstance(c, dict) and c.get("finishReason") for c in event.get("candidates") or []
    )


def stream_text(event: dict[str, Any]) -> str:
    """The text of the first candidate of a streamed response (empty in a closing chunk)."""
    candidates = event.get("candidates") or [{}]
    parts = (candidates[0].get("content") or {}).get("parts") or []
    return "".join(str(p["text"]) for p in parts if isinstance(p, dict) and "text" in p)


def unified_chat_chunk(event: dict[str, Any], model: str | None) -> dict[str, Any]:
    choices = []
    for position, candidate in enumerate(event.get("candidates") or []):
        delta: dict[str, Any] = {"role": "assistant"}
        parts = (candidate.get("content") or {}).get("parts") or []
        text = "".join(str(p["text"]) for p in parts if "text" in p)
        if text:
            delta["content"] = text
        calls = [p["functionCall"] for p in parts if isinstance(p.get("functionCall"), dict)]
        if calls:
            delta["tool_calls"] = [
                {
                    "index": i,
                    "id": str(call.get("name", "")),
                    "type": "function",
                    "function": {"name": call.get("name"), "arguments": json.dumps(call.get("args") or {})},
                }
                for i, call in enumerate(calls)
            ]
        choice: dict[str, Any] = {"delta": delta, "index": candidate.get("index", position)}
        reason = candidate.get("finishReason")
        if reason:
            choice["finish_reason"] = "tool_calls" if calls else _FINISH.get(reason, str(reason).lower())
        choices.append(choice)
    chunk: dict[str, Any] = {"choices": choices, "object": "chat.completion.chunk"}
    if event.get("responseId"):
        chunk["id"] = event["responseId"]
    if event.get("modelVersion") or model:
        chunk["model"] = event.get("modelVersion") or model
    usage = event.get("usageMetadata")
    if isinstance(usage, dict) and gemini_finished(event):
        chunk["usage"] = {
            "completion_tokens": usage.get("candidatesTokenCount", 0),
            "prompt_tokens": usage.get("promptTokenCount", 0),
            "total_tokens": usage.get("totalTokenCount", 0),
        }
    return chunk
