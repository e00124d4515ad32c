"""Performing inference: `POST /_inference/[{task_type}/]{id}` and the streamed completion form."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response, StreamingResponse

from sidecar.api import es_errors
from sidecar.api.bodies import (
    ChatCompletionRequest,
    PerformRequest,
    parse_model,
    read_json,
    validate_perform,
)
from sidecar.api.deps import limiter_of, registry_of, resolve, service_of, settings_of
from sidecar.api.limits import check_inputs
from sidecar.api.openapi import ERROR_RESPONSES, operation
from sidecar.api.params import QueryOptions, parse_task_type, parse_time, query_options
from sidecar.api.rendering import endpoint_warnings, es_json, warned
from sidecar.api.results import chat_completion_body, completion_chunk, inference_body
from sidecar.errors import SidecarError, StatusError, TimeoutError_
from sidecar.inference.service import DEFAULT_TIMEOUT_S
from sidecar.inference.types import ChatService, InputType, TaskType

log = logging.getLogger(__name__)
router = APIRouter(tags=["perform inference"], responses=ERROR_RESPONSES)

WithTimeout = Annotated[QueryOptions, Depends(query_options("timeout"))]
_PARSER = "cluster:internal/xpack/inference"
_STREAMABLE = (TaskType.COMPLETION, TaskType.CHAT_COMPLETION)
T = TypeVar("T")


async def _parse(
    request: Request, task_type: TaskType | None, inference_id: str
) -> tuple[PerformRequest, InputType | None, TaskType | None]:
    """The validated body, its input type, and the task it targets (None if not yet known)."""
    body = parse_model(PerformRequest, await read_json(request), _PARSER)
    target = task_type
    if target is None and body.input is not None:
        # Without a task type in the path, the endpoint's own type decides which fields apply.
        endpoint = await resolve(registry_of(request).get(inference_id, None))
        target = TaskType(endpoint.task_type)
    input_type = validate_perform(body, target)
    settings = settings_of(request)
    check_inputs(
        body.inputs(), max_inputs=settings.max_inputs_per_request, max_chars=settings.max_input_chars
    )
    return body, input_type, target


async def _perform(
    request: Request, task_type: TaskType | None, inference_id: str, options: QueryOptions
) -> Response:
    target = task_type or TaskType((await resolve(registry_of(request).get(inference_id, None))).task_type)
    if target == TaskType.CHAT_COMPLETION:
        return await _chat(request, task_type, inference_id, options)
    body, input_type, _ = await _parse(request, task_type, inference_id)
    timeout = parse_time("timeout", body.timeout) if body.timeout is not None else options.timeout
    async with limiter_of(request).slot():
        output = await service_of(request).infer(
            inference_id,
            body.inputs(),
            task_type=task_type,
            query=body.query_text(),
            input_type=input_type,
            task_settings=body.task_settings,
            top_n=body.top_n,
            return_documents=body.return_documents,
            timeout=timeout,
        )
    endpoint = await resolve(registry_of(request).get(inference_id, None))
    return warned(request, es_json(inference_body(output), options), endpoint_warnings(request, endpoint))


async def _chat(
    request: Request, task_type: TaskType | None, inference_id: str, options: QueryOptions
) -> Response:
    """Non-streaming `chat_completion`: the unified request, answered with one `chat.completion`
    object (Elasticsearch 9.x), assembled from the provider's stream."""
    chat = parse_model(ChatCompletionRequest, await read_json(request), _PARSER)
    service = service_of(request)
    if not isinstance(service, ChatService):
        raise StatusError("this server's inference service cannot serve [chat_completion]")
    limit = options.timeout if options.timeout is not None else DEFAULT_TIMEOUT_S
    async with limiter_of(request).slot():
        try:
            chunks = await asyncio.wait_for(
                _collect(service.stream_chat(inference_id, chat.provider_request(), task_type=task_type)),
                limit,
            )
        except TimeoutError as exc:
            raise TimeoutError_(f"Request timed out after [{limit}s]") from exc
    return es_json(chat_completion_body(chunks), options)


async def _collect(chunks: AsyncIterator[T]) -> list[T]:
    return [chunk async for chunk in chunks]


# --- streaming -----------------------------------------------------------------------------------


def _check_streamable(task_type: TaskType) -> None:
    if task_type not in _STREAMABLE:
        allowed = ", ".join(str(t) for t in _STREAMABLE)
        raise StatusError(
            f"Streaming is not allowed for task [{task_type}]. Allowed streaming tasks: [{allowed}]",
            status=405,
        )


def _sse(event: str, data: str) -> bytes:
    return f"event: {event}\ndata: {data}\n\n".encode()


async def _stream(
    request: Request, task_type: TaskType | None, inference_id: str, first_within: float | None
) -> Response:
    if task_type is not None:
        _check_streamable(task_type)
    target = task_type
    if target is None:
        target = TaskType((await resolve(registry_of(request).get(inference_id, None))).task_type)
        _check_streamable(target)
    if target == TaskType.CHAT_COMPLETION:
        chat = parse_model(ChatCompletionRequest, await read_json(request), _PARSER)
        service = service_of(request)
        if not isinstance(service, ChatService):
            raise StatusError("this server's inference service cannot stream [chat_completion]")
        stream = service.stream_chat(inference_id, chat.provider_request(), task_type=task_type)
        return await _sse_response(request, stream, json.dumps, first_within)
    body, _, _ = await _parse(request, task_type, inference_id)
    deltas = service_of(request).stream_completion(
        inference_id, body.inputs(), task_type=task_type, task_settings=body.task_settings
    )
    return await _sse_response(
        request, deltas, lambda delta: json.dumps(completion_chunk(delta)), first_within
    )


async def _sse_response(
    request: Request, chunks: AsyncIterator[T], render: Callable[[T], str], first_within: float | None = None
) -> Response:
    """Server-sent events in Elasticsearch's format: one `message` event per chunk, then `[DONE]`;
    a failure after the first chunk becomes an `error` event with the usual error body.
    `first_within` (the request's `?timeout=`) bounds the wait for the first chunk."""
    # The in-flight slot covers the call up to the first chunk: errors before it still get a proper
    # status, and a stream abandoned by its client holds no slot.
    async with limiter_of(request).slot():
        try:
            first = await asyncio.wait_for(anext(chunks, None), first_within)
        except TimeoutError as exc:
            raise TimeoutError_(f"Request timed out after [{first_within}s]") from exc

    async def events() -> AsyncIterator[bytes]:
        try:
            if first is not None:
                yield _sse("message", render(first))
                async for chunk in chunks:
                    yield _sse("message", render(chunk))
            yield _sse("message", "[DONE]")
        except Exception as exc:
            err = exc if isinstance(exc, SidecarError) else es_errors.unexpected_error(exc)
            es_errors.log_error(err)
            yield _sse("error", json.dumps(es_errors.error_body(err)))
        finally:
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()

    return StreamingResponse(events(), media_type="text/event-stream")


_STREAM_DOC = operation("timeout", body=PerformRequest)


@router.post(
    "/_inference/{inference_id}/_stream",
    summary="Stream a completion as server-sent events",
    openapi_extra=_STREAM_DOC,
)
async def stream(request: Request, inference_id: str, options: WithTimeout) -> Response:
    return await _stream(request, None, inference_id, options.timeout)


@router.post(
    "/_inference/{task_type}/{inference_id}/_stream",
    summary="Stream a completion of a task type as server-sent events",
    openapi_extra=_STREAM_DOC,
)
async def stream_typed(request: Request, task_type: str, inference_id: str, options: WithTimeout) -> Response:
    return await _stream(request, parse_task_type(task_type), inference_id, options.timeout)


# --- perform (declared after `_stream`, whose static segment must win) ---------------------------


_PERFORM_DOC = operation("timeout", body=PerformRequest)


@router.post("/_inference/{inference_id}", summary="Perform inference", openapi_extra=_PERFORM_DOC)
async def perform(request: Request, inference_id: str, options: WithTimeout) -> Response:
    return await _perform(request, None, inference_id, options)


@router.post(
    "/_inference/{task_type}/{inference_id}",
    summary="Perform inference with a task type",
    openapi_extra=_PERFORM_DOC,
)
async def perform_typed(
    request: Request, task_type: str, inference_id: str, options: WithTimeout
) -> Response:
    return await _perform(request, parse_task_type(task_type), inference_id, options)
