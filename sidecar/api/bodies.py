"""Request bodies: read, parse and validate in one place, with Elasticsearch's error types.

- no body where one is required -> `parse_exception` "request body is required"
- malformed JSON, a non-object, an unknown field or a wrongly typed field -> `x_content_parse_exception`
- semantic rules (input missing, query for rerank, ...) -> `action_request_validation_exception`
  with the same sentences Elasticsearch uses.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sidecar import jsontext
from sidecar.api.media import is_json_body_type
from sidecar.errors import MissingBodyError, ParseError, RequestValidationError, SidecarError, StatusError
from sidecar.inference.types import InputType, TaskType

M = TypeVar("M", bound=BaseModel)

InputTypeName = Literal["ingest", "search", "classification", "clustering"]


class UnsupportedContentTypeError(SidecarError):
    """A request body in a format other than JSON (Elasticsearch answers 406)."""

    status = 406
    es_type = "content_type_header_exception"
    short_form = True  # Elasticsearch answers `{"error": "<sentence>", "status": 406}`


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PerformRequest(_Strict):
    """`POST /_inference/...`: what Elasticsearch's perform-inference API accepts."""

    input: str | list[str | dict[str, Any]] | dict[str, Any] | None = Field(
        None,
        description=(
            'A text, a list of texts, or content objects: `{"content": {"type": "text", "value": ...}}` '
            '(embedding) or `{"type": "text", "value": ...}` (rerank); only text content is served.'
        ),
    )
    query: str | dict[str, Any] | None = Field(
        None, description="The query (rerank only): a text or text object."
    )
    input_type: str | None = Field(None, description="ingest | search | classification | clustering.")
    task_settings: dict[str, Any] | None = Field(None, description="Per-request task settings.")
    top_n: int | None = Field(None, description="Rerank: how many documents to return.")
    return_documents: bool | None = Field(None, description="Rerank: include document texts.")
    timeout: str | None = Field(None, description="How long to wait (Elasticsearch time value).")

    def inputs(self) -> list[str]:
        """The input texts, content objects reduced to their text (non-text content: a 400)."""
        if self.input is None:
            return []
        items = self.input if isinstance(self.input, list) else [self.input]
        return [_text_of(item, f"input[{i}]") for i, item in enumerate(items)]

    def query_text(self) -> str | None:
        return None if self.query is None else _text_of(self.query, "query")


_CONTENT_KEYS = {"type", "format", "value"}


def _text_of(item: Any, where: str) -> str:
    """A text input: a string, Elasticsearch's `{"content": {...}}` embedding item, or a
    `RerankInputObject` `{"type", "format", "value"}`. This server's models read text only."""
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and set(item) == {"content"}:
        content = item["content"]
        if isinstance(content, list):
            if len(content) != 1:
                raise StatusError(
                    f"[{where}] has a content object with [{len(content)}] items; this server's models "
                    "embed one text item per content object"
                )
            content = content[0]
        return _text_of(content, f"{where}.content")
    if not isinstance(item, dict) or "type" not in item or "value" not in item or set(item) - _CONTENT_KEYS:
        raise ParseError(
            f"[{where}] must be a string or a content object with [type] and [value] (and optional [format])"
        )
    kind, value, form = item["type"], item["value"], item.get("format", "text")
    if kind != "text":
        raise StatusError(
            f"[{where}] has content of type [{kind}]; this server's models accept only [text] content"
        )
    if form != "text" or not isinstance(value, str):
        raise ParseError(
            f"[{where}] text content must have a string [value] and format [text], found [{form}]"
        )
    return value


class ChatMessage(BaseModel):
    """One conversation message of a `chat_completion` request (OpenAI's shape)."""

    model_config = ConfigDict(extra="forbid")

    role: str = Field(description="system | user | assistant | tool.")
    content: str | list[dict[str, Any]] | None = Field(None, description="Text, or content parts.")
    tool_call_id: str | None = Field(None, description="For `tool` messages: the call answered.")
    tool_calls: list[dict[str, Any]] | None = Field(None, description="Tool calls an assistant made.")
    reasoning: str | None = Field(
        None, description="An assistant's reasoning, as plain text (not forwarded)."
    )
    reasoning_details: list[dict[str, Any]] | None = Field(
        None, description="An assistant's structured reasoning details (not forwarded)."
    )


class Reasoning(BaseModel):
    """Elasticsearch's `reasoning` options of a chat request (its `elastic` service reads them)."""

    model_config = ConfigDict(extra="forbid")

    effort: Literal["xhigh", "high", "medium", "low", "minimal", "none"] | None = None
    enabled: bool | None = None
    exclude: bool | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


class ChatCompletionRequest(BaseModel):
    """`POST /_inference/chat_completion/{id}[/_stream]`: Elasticsearch's unified chat request."""

    model_config = ConfigDict(extra="forbid")

    messages: list[ChatMessage] = Field(min_length=1, description="The conversation so far.")
    model: str | None = Field(None, description="Overrides the endpoint's model.")
    max_completion_tokens: int | None = Field(None, ge=1, description="Upper bound of generated tokens.")
    stop: list[str] | None = Field(None, description="Sequences that end generation.")
    temperature: float | None = Field(None, ge=0, le=2, description="Sampling temperature.")
    tool_choice: str | dict[str, Any] | None = Field(None, description="none | auto | required | a tool.")
    tools: list[dict[str, Any]] | None = Field(None, description="Functions the model may call.")
    top_p: float | None = Field(None, ge=0, le=1, description="Nucleus sampling mass.")
    reasoning: Reasoning | None = Field(
        None, description="Reasoning options: validated, not forwarded (no service here takes them)."
    )

    def provider_request(self) -> dict[str, Any]:
        """The request for the provider: reasoning options and past reasoning are Elasticsearch's
        `elastic`-service fields, which the OpenAI-format providers here do not accept."""
        return self.model_dump(
            exclude_none=True,
            exclude={"reasoning": True, "messages": {"__all__": {"reasoning", "reasoning_details"}}},
        )


class HuggingFaceRequest(_Strict):
    """The body Elasticsearch's `hugging_face` service sends (Hugging Face Inference API format)."""

    inputs: str | list[str] = Field(description="A text or a list of texts.")
    parameters: dict[str, Any] | None = Field(None, description="Accepted for compatibility; ignored.")
    options: dict[str, Any] | None = Field(None, description="Accepted for compatibility; ignored.")
    truncate: bool | None = Field(
        None, description="Accepted; input is always truncated to the model length."
    )
    normalize: bool | None = Field(None, description="Accepted for compatibility; ignored.")

    def texts(self) -> list[str]:
        return [self.inputs] if isinstance(self.inputs, str) else list(self.inputs)


class CustomServiceRequest(_Strict):
    """The body of the documented `custom` service template: `{"input": ${input}, ...}`."""

    input: str | list[str] = Field(description="A text or a list of texts.")
    input_type: InputTypeName | None = Field(
        None, description="ingest | search | classification | clustering."
    )
    task_settings: dict[str, Any] | None = Field(None, description="Per-request task settings.")

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


class EndpointConfig(BaseModel):
    """`PUT /_inference/...` body (documentation only; the registry validates the settings)."""

    model_config = ConfigDict(extra="allow")

    service: str = Field(description="The inference service, e.g. `splade`, `hugging_face`, `openai`.")
    service_settings: dict[str, Any] = Field(description="Settings of the service.")
    task_settings: dict[str, Any] | None = Field(None, description="Default task settings.")
    chunking_settings: dict[str, Any] | None = Field(None, description="Chunking (embedding tasks only).")
    task_type: str | None = Field(None, description="Task type, when the path has none.")


async def read_json(request: Request, *, required: bool = True) -> Any:
    """The request body parsed as JSON; None when there is none and none is required."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise MissingBodyError("request body is required")
        return None
    content_type = request.headers.get("content-type")
    if content_type is None:
        raise UnsupportedContentTypeError("Content-Type header is missing")
    if not is_json_body_type(content_type):
        raise UnsupportedContentTypeError(f"Content-Type header [{content_type}] is not supported")
    try:  # comments allowed as in Elasticsearch; bad UTF-8, lone surrogates and deep nesting refused
        return jsontext.loads(raw, object_pairs_hook=_no_duplicates)
    except ValueError as exc:
        raise ParseError(f"Failed to parse request body: {_short(exc)}") from exc


async def read_object(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ParseError(f"request body must be a JSON object, found [{type(body).__name__}]")
    return body


def parse_model(model: type[M], data: Any, parser: str) -> M:
    """Validate `data` against `model`, turning pydantic's errors into Elasticsearch's."""
    if not isinstance(data, dict):
        raise ParseError(f"[{parser}] request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # Parsing problems (unknown or malformed fields) come before missing ones, as in Elasticsearch.
        order = {"extra_forbidden": 0, "missing": 2}
        first = min(exc.errors(), key=lambda e: order.get(e["type"], 1))
        name = str(first["loc"][0]) if first["loc"] else "?"
        if first["type"] == "extra_forbidden":
            raise ParseError(f"[{parser}] unknown field [{name}]") from None
        if first["type"] == "missing":
            raise RequestValidationError(f"Validation Failed: 1: Field [{name}] cannot be null;") from None
        raise ParseError(f"[{parser}] failed to parse field [{name}]") from None


def validate_perform(body: PerformRequest, task_type: TaskType | None) -> InputType | None:
    """Elasticsearch's own checks of a perform-inference request; returns the parsed `input_type`.

    `task_type` is the task the request targets (None when neither the path nor the endpoint is known).
    """

    def fail(message: str) -> RequestValidationError:
        return RequestValidationError(f"Validation Failed: 1: {message};")

    input_type = _parse_input_type(body.input_type)
    if body.input is None:
        raise fail("Field [input] cannot be null")
    if isinstance(body.input, list) and not body.input:
        raise fail("Field [input] cannot be an empty array")
    if task_type is TaskType.RERANK:
        if body.query is None:
            raise fail("Field [query] cannot be null for task type [rerank]")
        if not body.query:
            raise fail("Field [query] cannot be empty for task type [rerank]")
        if body.top_n is not None and body.top_n < 1:
            raise fail("Field [top_n] must be greater than 0")
    elif task_type is not None:
        if body.return_documents is not None:
            raise fail(f"Field [return_documents] cannot be specified for task type [{task_type}]")
        if body.top_n is not None:
            raise fail(f"Field [top_n] cannot be specified for task type [{task_type}]")
    if task_type in _EMBEDDING_TASKS and body.query is not None:
        raise fail(f"Field [query] cannot be specified for task type [{task_type}]")
    if task_type is not None and task_type not in _INPUT_TYPE_TASKS and input_type is not None:
        raise fail(f"Field [input_type] cannot be specified for task type [{task_type}]")
    return input_type


_EMBEDDING_TASKS = (TaskType.TEXT_EMBEDDING, TaskType.SPARSE_EMBEDDING, TaskType.EMBEDDING)
_INPUT_TYPE_TASKS = (TaskType.TEXT_EMBEDDING, TaskType.EMBEDDING)


def _parse_input_type(raw: str | None) -> InputType | None:
    if raw is None:
        return None
    try:
        return InputType(raw.lower())
    except ValueError:
        allowed = ", ".join(t.value for t in InputType)
        raise ParseError(f"Unrecognized input_type [{raw}], must be one of [{allowed}]") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"Duplicate field '{key}'")
        result[key] = value
    return result


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."
