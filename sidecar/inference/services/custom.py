"""Elasticsearch's `custom` service: any JSON-over-HTTP provider described by templates and paths.

Service settings (Elasticsearch 8.19 / 9.1 schema): `url`, `headers`, `query_parameters`
(`[[key, value], ...]`), `request` (the body template, a string), `response.json_parser` (paths
per task type, see `sidecar.inference.services.jsonpath`), `input_type` (`translation` map and
`default`), `batch_size` (inputs per request, default 10), `secret_parameters` (stored as
secrets), and for text_embedding `dimensions`, `similarity`, `max_input_tokens`. Task settings:
`parameters` (strings, numbers, booleans), merged over the stored ones per request.

Templates are `${name}`. In `request`, values are JSON-encoded (a string gains quotes, a list
becomes an array) so templates stand unquoted: `${input}` (the list of inputs; rerank: the
documents; completion: one input), `${input_type}` (translated, else the default, else ""),
`${query}`, `${top_n}`, `${return_documents}`, every secret parameter and every task parameter.
`url`, `headers` and query parameters take secret and string task parameters as they are. A
placeholder left without a value is refused at PUT with Elasticsearch's message. Values are
substituted once: text inside an input is never read as a placeholder.

Where this differs from Elasticsearch, on purpose: answers whose top level is an array (as
text-embeddings-inference sends) are read with `$[*]...` paths; a rerank template may use
`${top_n}` / `${return_documents}` without the request giving them (they default to the number of
documents and false); a completion request with several inputs sends one request per input
(Elasticsearch sends only the first).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from sidecar.errors import SettingsValidationError, StatusError
from sidecar.inference.services.base import COMPLETION, DENSE, RERANK, SPARSE, Runtime
from sidecar.inference.services.jsonpath import (
    PathError,
    as_list,
    as_number,
    as_string,
    each,
    extract,
)
from sidecar.inference.services.remote import RemoteCaller, parse_failure
from sidecar.inference.services.validation import Errors
from sidecar.inference.types import (
    CompletionResult,
    DenseEmbedding,
    InputType,
    RankedDocument,
    SparseEmbedding,
    TaskType,
)

DEFAULT_BATCH_SIZE = 10
_SCOPE = "service_settings"
_PARSER_SCOPE = "service_settings.response.json_parser"
_PLACEHOLDER = re.compile(r"\$\{([^}\n]*)\}")  # `${name}` on one line, as Elasticsearch matches it
_REQUIRED_PATHS = {
    SPARSE: ("token_path", "weight_path"),
    DENSE: ("text_embeddings",),
    RERANK: ("relevance_score",),
    COMPLETION: ("completion_result",),
}
_OPTIONAL_PATHS = {DENSE: ("embedding_type",), RERANK: ("reranked_index", "document_text")}
# Elasticsearch's embedding types -> the response key they select here.
_EMBEDDING_TYPES = {"float": "float", "byte": "byte", "binary": "bit", "bit": "bit"}
_DENSE_ONLY = ("dimensions", "similarity", "max_input_tokens")
_PARAMETER_TYPES = (str, int, float, bool)


def _wrong_type(key: str, value: Any, kind: str) -> str:
    return f"field [{key}] is not of the expected type. The value [{value}] cannot be converted to a [{kind}]"


def _string(settings: dict[str, Any], key: str, errors: Errors, scope: str, required: bool) -> str | None:
    value = settings.get(key)
    if value is None:
        if required:
            errors.add(f"[{scope}] does not contain the required setting [{key}]")
        return None
    if not isinstance(value, str):
        errors.add(_wrong_type(key, value, "String"))
        return None
    if required and not value.strip():
        errors.add(f"[{scope}] Invalid value empty string. [{key}] must be a non-empty string")
        return None
    return value


def _map(settings: dict[str, Any], key: str, errors: Errors) -> dict[str, Any] | None:
    value = settings.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        errors.add(_wrong_type(key, value, "Map"))
        return None
    return {k: v for k, v in value.items() if v is not None}


def _string_map(settings: dict[str, Any], key: str, errors: Errors) -> dict[str, str]:
    values = _map(settings, key, errors) or {}
    for name, value in values.items():
        if not isinstance(value, str):
            errors.add(
                f"Map field [{key}] has an entry that is not valid, [{name} => {value}]. "
                f"Value type of [{value}] is not one of [String]."
            )
    return {k: v for k, v in values.items() if isinstance(v, str)}


def _unknown(keys: dict[str, Any], field_name: str) -> StatusError:
    shown = ", ".join(f"{k}={v}" for k, v in keys.items())
    return StatusError(
        f"Configuration contains unknown settings [{{{shown}}}] while parsing field [{field_name}] "
        "for settings [custom_service_settings]"
    )


@dataclass(frozen=True)
class CustomConfig:
    url: str
    headers: dict[str, str]
    query_parameters: list[tuple[str, str]]
    request: str
    paths: dict[str, str]
    translation: dict[str, str]
    default_input_type: str
    batch_size: int
    secret_parameters: dict[str, str]
    parameters: dict[str, Any]

    @classmethod
    def parse(
        cls,
        task_type: TaskType | None,
        settings: dict[str, Any],
        secret_parameters: Any,
        task_settings: dict[str, Any],
    ) -> CustomConfig:
        """Elasticsearch's checks of a custom endpoint (task-specific paths when `task_type` is given)."""
        errors = Errors()
        url = _string(settings, "url", errors, _SCOPE, True)
        request = _string(settings, "request", errors, _SCOPE, True)
        headers = _string_map(settings, "headers", errors)
        query = _query_parameters(settings.get("query_parameters"), errors)
        paths = _response_paths(task_type, settings, errors)
        translation, default = _input_type(settings.get("input_type"), errors)
        batch_size = settings.get("batch_size", DEFAULT_BATCH_SIZE)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            errors.add(f"[{_SCOPE}] Invalid value [{batch_size}]. [batch_size] must be a positive integer")
        secrets = _string_map({"secret_parameters": secret_parameters}, "secret_parameters", errors)
        parameters = task_parameters(task_settings, errors)
        errors.raise_any()
        return cls(
            str(url),
            headers,
            query,
            str(request),
            paths,
            translation,
            default,
            int(batch_size),
            secrets,
            parameters,
        )

    # --- rendering --------------------------------------------------------------------------------
    def _strings(self, parameters: dict[str, Any]) -> dict[str, str]:
        """What `url`, `headers` and query parameters may use: secrets and string task parameters."""
        values = dict(self.secret_parameters)
        values.update({k: v for k, v in parameters.items() if isinstance(v, str)})
        return values

    def render(self, values: dict[str, Any], parameters: dict[str, Any]) -> tuple[str, dict[str, str], str]:
        """(url with query parameters, headers, body) for one request."""
        strings = self._strings(parameters)
        url = httpx.URL(substitute(self.url, strings, "url"))
        for key, value in self.query_parameters:
            url = url.copy_add_param(key, substitute(value, strings, f"query parameters: [{key}]"))
        headers = {"Content-Type": "application/json"}
        for name, value in self.headers.items():
            for existing in [h for h in headers if h.lower() == name.lower()]:
                del headers[existing]  # the user's Content-Type replaces the default
            headers[name] = substitute(value, strings, f"header.{name}")
        json_values = {k: _json(v) for k, v in {**self.secret_parameters, **parameters}.items()}
        json_values.update({k: _json(v) for k, v in values.items()})
        return str(url), headers, substitute(self.request, json_values, "request")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def substitute(template: str, values: dict[str, str], field_name: str) -> str:
    """Every `${name}` replaced by `values[name]`, in one pass; a name without a value is an error."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise StatusError(
                f"Found placeholder [{match.group(0)}] in field [{field_name}] after replacement call"
            )
        return values[match.group(1)]

    return _PLACEHOLDER.sub(replace, template)


def task_parameters(task_settings: dict[str, Any], errors: Errors) -> dict[str, Any]:
    parameters = _map(task_settings, "parameters", errors) or {}
    for name, value in parameters.items():
        if not isinstance(value, _PARAMETER_TYPES):
            errors.add(
                f"Map field [parameters] has an entry that is not valid, [{name} => {value}]. "
                f"Value type of [{value}] is not one of [Boolean, Double, Float, Integer, String]."
            )
    return parameters


def _query_parameters(raw: Any, errors: Errors) -> list[tuple[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.add(_wrong_type("query_parameters", raw, "List"))
        return []
    pairs: list[tuple[str, str]] = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, list) or len(entry) != 2 or not all(isinstance(x, str) for x in entry):
            errors.add(
                f"[{_SCOPE}] entry [{i}] of [query_parameters] must be a list of two strings "
                f"[key, value], received [{entry}]"
            )
            continue
        pairs.append((entry[0], entry[1]))
    return pairs


def _response_paths(task_type: TaskType | None, settings: dict[str, Any], errors: Errors) -> dict[str, str]:
    response = _map(settings, "response", errors)
    if response is None:
        return {}
    parser = _map(response, "json_parser", errors)
    if parser is None:
        if "json_parser" not in response:
            errors.add(f"[{_SCOPE}.response] does not contain the required setting [json_parser]")
        return {}
    unknown_response = {k: v for k, v in response.items() if k != "json_parser"}
    if task_type is None:
        return {k: v for k, v in parser.items() if isinstance(v, str)}
    required = _REQUIRED_PATHS.get(task_type, ())
    optional = _OPTIONAL_PATHS.get(task_type, ())
    paths: dict[str, str] = {}
    for key in required:
        value = _string(parser, key, errors, _PARSER_SCOPE, True)
        if value is not None:
            paths[key] = value
    for key in optional:
        value = _string(parser, key, errors, _PARSER_SCOPE, False)
        if value is not None:
            paths[key] = value
    kind = paths.get("embedding_type")
    if kind is not None and kind.lower() not in _EMBEDDING_TYPES:
        errors.add(
            f"[{_PARSER_SCOPE}] Invalid value [{kind}] received. [embedding_type] must be one of "
            f"[{', '.join(_EMBEDDING_TYPES)}]"
        )
    errors.raise_any()
    unknown = {k: v for k, v in parser.items() if k not in required and k not in optional}
    if unknown:
        raise _unknown(unknown, "json_parser")
    if unknown_response:
        raise _unknown(unknown_response, "response")
    return paths


def _input_type(raw: Any, errors: Errors) -> tuple[dict[str, str], str]:
    if raw is None:
        return {}, ""
    if not isinstance(raw, dict):
        errors.add(_wrong_type("input_type", raw, "Map"))
        return {}, ""
    unknown = {k: v for k, v in raw.items() if k not in ("translation", "default")}
    if unknown:
        shown = ", ".join(f"{k}={v}" for k, v in unknown.items())
        raise StatusError(
            f"Configuration contains unknown settings [{{{shown}}}] while parsing field [input_type] "
            "for settings [input_type_translator]"
        )
    translation = _map(raw, "translation", errors) or {}
    valid = [str(t) for t in InputType]
    for key, value in translation.items():
        if key not in valid:
            errors.add(
                f"Invalid input type translation for key: [{key}], is not a valid value. Must be one of "
                f"[{', '.join(sorted(valid))}]"
            )
        elif not isinstance(value, str) or not value:
            errors.add(
                f"Input type translation value for key [{key}] must be a String that is not null and not "
                f"empty, received: [{value}]."
            )
    default = raw.get("default", "")
    if not isinstance(default, str):
        errors.add(_wrong_type("default", default, "String"))
        default = ""
    return {k: str(v) for k, v in translation.items()}, default


def _probe_values(task_type: TaskType) -> dict[str, Any]:
    """The values a request of this task type substitutes (checked at PUT with test inputs)."""
    if task_type == RERANK:
        return {"input": ["test input"], "query": "test query", "top_n": 1, "return_documents": False}
    if task_type == COMPLETION:
        return {"input": "test input"}
    return {"input": ["test input"], "input_type": ""}


class CustomRuntime(Runtime):
    def __init__(
        self, inference_id: str, settings: dict[str, Any], secrets: dict[str, Any], caller: RemoteCaller
    ) -> None:
        self.inference_id = inference_id
        self.caller = caller
        self.config = CustomConfig.parse(None, settings, secrets.get("secret_parameters"), {})

    @classmethod
    def check_settings(
        cls, task_type: TaskType, service_settings: dict[str, Any], task_settings: dict[str, Any]
    ) -> None:
        if task_type != DENSE:
            extra = {k: service_settings[k] for k in _DENSE_ONLY if k in service_settings}
            if extra:
                shown = ", ".join(f"{k}={v}" for k, v in extra.items())
                raise StatusError(
                    f"Model configuration contains settings {{{shown}}} unknown to the [custom] service"
                )
        config = CustomConfig.parse(
            task_type, service_settings, service_settings.get("secret_parameters"), task_settings
        )
        try:
            config.render(_probe_values(task_type), config.parameters)
        except StatusError as exc:
            raise SettingsValidationError(
                f"Validation Failed: 1: Failed to validate model configuration: {exc.reason};"
            ) from exc

    async def aclose(self) -> None:
        await self.caller.aclose()

    def _fail(self, what: str) -> Exception:
        return parse_failure("custom", self.inference_id, what)

    async def _call(self, values: dict[str, Any], task_settings: dict[str, Any]) -> Any:
        errors = Errors()
        parameters = task_parameters(task_settings, errors)
        errors.raise_any()
        url, headers, body = self.config.render(values, {**self.config.parameters, **parameters})
        return await self.caller.post(url, None, headers, content=body)

    def _read(self, answer: Any, read: Callable[[Any], Any]) -> Any:
        try:
            return read(answer)
        except PathError as exc:
            raise self._fail(str(exc)) from exc

    def _input_type(self, input_type: InputType | None) -> str:
        if input_type is not None and str(input_type) in self.config.translation:
            return self.config.translation[str(input_type)]
        return self.config.default_input_type

    async def _batches(
        self, texts: list[str], input_type: InputType | None, task_settings: dict[str, Any]
    ) -> AsyncIterator[tuple[list[str], Any]]:
        size = self.config.batch_size
        for start in range(0, len(texts), size):
            part = texts[start : start + size]
            values = {"input": part, "input_type": self._input_type(input_type)}
            yield part, await self._call(values, task_settings)

    # --- embeddings -------------------------------------------------------------------------------
    async def dense(
        self,
        texts: list[str],
        *,
        input_type: InputType | None,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> tuple[list[DenseEmbedding], str]:
        kind = _EMBEDDING_TYPES[self.config.paths.get("embedding_type", "float").lower()]
        out: list[DenseEmbedding] = []
        async for part, answer in self._batches(texts, input_type, task_settings):
            rows = self._read(answer, lambda body: self._dense_rows(body, kind))
            if len(rows) != len(part):
                raise self._fail(f"{len(rows)} embeddings for {len(part)} inputs")
            out.extend(DenseEmbedding(row) for row in rows)
        return out, kind

    def _dense_rows(self, body: Any, kind: str) -> list[list[float]] | list[list[int]]:
        found = extract(body, self.config.paths["text_embeddings"])
        rows = as_list(found.value, found.list_field(0))
        inner = found.list_field(1)
        vectors: list[Any] = []
        for i, row in enumerate(rows):
            try:
                numbers = each(as_list(row, inner), as_number, inner)
                vectors.append(numbers if kind == "float" else [_byte(x, inner) for x in numbers])
            except PathError as exc:
                raise PathError(f"Failed to parse text embedding entry [{i}], error: {exc}") from exc
        return vectors

    async def sparse(
        self,
        texts: list[str],
        *,
        input_type: InputType | None,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> list[SparseEmbedding]:
        out: list[SparseEmbedding] = []
        async for part, answer in self._batches(texts, input_type, task_settings):
            rows = self._read(answer, self._sparse_rows)
            if len(rows) != len(part):
                raise self._fail(f"{len(rows)} sparse embeddings for {len(part)} inputs")
            out.extend(SparseEmbedding(row) for row in rows)
        return out

    def _sparse_rows(self, body: Any) -> list[dict[str, float]]:
        tokens_found = extract(body, self.config.paths["token_path"])
        weights_found = extract(body, self.config.paths["weight_path"])
        tokens = as_list(tokens_found.value, tokens_found.list_field(0))
        weights = as_list(weights_found.value, weights_found.list_field(0))
        _same_size(tokens, weights)
        rows = []
        for i, (token_row, weight_row) in enumerate(zip(tokens, weights, strict=True)):
            try:
                names = as_list(token_row, tokens_found.list_field(1))
                values = as_list(weight_row, weights_found.list_field(1))
                _same_size(names, values)
                row: dict[str, float] = {}
                for j, (name, weight) in enumerate(zip(names, values, strict=True)):
                    try:
                        row[_token(name)] = as_number(weight, weights_found.list_field(1))
                    except PathError as exc:
                        raise PathError(f"Failed to parse weight item: [{j}] of array, error: {exc}") from exc
                rows.append(row)
            except PathError as exc:
                raise PathError(f"Failed to parse sparse embedding entry [{i}], error: {exc}") from exc
        return rows

    # --- rerank -----------------------------------------------------------------------------------
    async def rerank(
        self,
        query: str,
        documents: list[str],
        *,
        top_n: int | None,
        return_documents: bool,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> list[RankedDocument]:
        values = {
            "input": documents,
            "query": query,
            "top_n": top_n if top_n is not None else len(documents),
            "return_documents": return_documents,
        }
        answer = await self._call(values, task_settings)
        scores, indices, texts = self._read(answer, self._rerank_fields)
        ranked = []
        for position, score in enumerate(scores):
            index = indices[position] if indices is not None else position
            if not 0 <= index < len(documents):
                raise self._fail(f"reranked index [{index}] is not one of the [{len(documents)}] documents")
            text = texts[position] if texts is not None else documents[index] if return_documents else None
            ranked.append(RankedDocument(index, score, text))
        ranked.sort(key=lambda r: -r.relevance_score)
        return ranked[:top_n] if top_n else ranked

    def _rerank_fields(self, body: Any) -> tuple[list[float], list[int] | None, list[str] | None]:
        paths = self.config.paths

        def read(path: str, what: str, convert: Callable[[Any, str], Any]) -> list[Any]:
            try:
                found = extract(body, path)
                name = found.list_field(0)
                return each(as_list(found.value, name), convert, name)
            except PathError as exc:
                raise PathError(f"Failed to parse rerank {what}, error: {exc}") from exc

        scores = read(paths["relevance_score"], "scores", as_number)
        indices = None
        if "reranked_index" in paths:
            indices = [int(x) for x in read(paths["reranked_index"], "indices", as_number)]
            if len(indices) != len(scores):
                raise PathError(
                    f"The number of index fields [{len(indices)}] was not the same as the number of "
                    f"scores [{len(scores)}]"
                )
        texts = None
        if "document_text" in paths:
            texts = read(paths["document_text"], "documents", as_string)
            if len(texts) != len(scores):
                raise PathError(
                    f"The number of document fields [{len(texts)}] was not the same as the number of "
                    f"scores [{len(scores)}]"
                )
        return scores, indices, texts

    # --- completion -------------------------------------------------------------------------------
    async def complete(
        self, texts: list[str], *, task_settings: dict[str, Any], time_limit: float | None
    ) -> list[CompletionResult]:
        out: list[CompletionResult] = []
        for text in texts:
            answer = await self._call({"input": text}, task_settings)
            out.extend(CompletionResult(r) for r in self._read(answer, self._completions))
        return out

    def _completions(self, body: Any) -> list[str]:
        path = self.config.paths["completion_result"]
        found = extract(body, path)
        if isinstance(found.value, str):
            return [found.value]
        if isinstance(found.value, list):
            return each(found.value, as_string, path)
        if found.value is None:
            raise PathError(f"Failed to parse field [{path}], extracted field was null")
        raise PathError(
            f"Extracted field [{found.list_field(0)}] from path [{path}] is an invalid type, expected a "
            f"list or a string but received [{type(found.value).__name__}]"
        )


def _same_size(tokens: list[Any], weights: list[Any]) -> None:
    if len(tokens) != len(weights):
        raise PathError(
            f"The extracted tokens list is size [{len(tokens)}] but the weights list is size "
            f"[{len(weights)}]. The list sizes must be equal."
        )


def _token(value: Any) -> str:
    """A token as text: providers may answer token ids (numbers) instead of strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _byte(value: float, name: str) -> int:
    if not value.is_integer() or not -128 <= value <= 127:
        raise PathError(f"Value [{value}] of field [{name}] is out of range for a byte")
    return int(value)
