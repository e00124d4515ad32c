"""JSON answers with Elasticsearch's `pretty` and `filter_path` options applied."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sidecar.api.media import DEFAULT_MAJOR, compat_major
from sidecar.api.params import QueryOptions

_DROP = object()


class EsJSONResponse(Response):
    """Compact JSON (or indented with `pretty`); the middleware sets the negotiated media type."""

    media_type = "application/json"

    def __init__(self, content: Any, status_code: int = 200, *, pretty: bool = False, **kwargs: Any) -> None:
        self._pretty = pretty
        super().__init__(content, status_code=status_code, **kwargs)

    def render(self, content: Any) -> bytes:
        if self._pretty:
            return (json.dumps(content, ensure_ascii=False, indent=2) + "\n").encode()
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def es_json(body: Any, options: QueryOptions, status_code: int = 200) -> EsJSONResponse:
    if options.filter_path:
        body = filter_body(body, options.filter_path)
    return EsJSONResponse(body, status_code=status_code, pretty=options.pretty)


def filter_body(body: Any, patterns: list[str]) -> Any:
    """Keep what the inclusive patterns match, then drop what `-`-prefixed patterns match.

    Segments are dot-separated and may use `*` wildcards; `**` matches any number of levels.
    Arrays are transparent: a pattern applies to each element, as in Elasticsearch.
    """
    include = [p.split(".") for p in patterns if not p.startswith("-")]
    exclude = [p[1:].split(".") for p in patterns if p.startswith("-")]
    if include:
        body = _keep(body, include)
        if body is _DROP:
            return {}
    for path in exclude:
        body = _remove(body, path)
    return body


def _keep(value: Any, paths: list[list[str]]) -> Any:
    if any(not path for path in paths):
        return value  # a pattern ended here: keep the whole subtree
    if isinstance(value, list):
        kept = [k for k in (_keep(item, paths) for item in value) if k is not _DROP]
        return kept if kept else _DROP
    if not isinstance(value, dict):
        return _DROP
    result = {}
    for key, child in value.items():
        child_paths = _descend(paths, key)
        if child_paths:
            kept = _keep(child, child_paths)
            if kept is not _DROP:
                result[key] = kept
    return result if result else _DROP


def _descend(paths: list[list[str]], key: str) -> list[list[str]]:
    """The remaining patterns after matching `key` against each pattern's first segment."""
    out: list[list[str]] = []
    for path in paths:
        head, rest = path[0], path[1:]
        if head == "**":
            out.append(path)  # `**` may match more levels below ...
            out.extend(_descend([rest], key) if rest else [[]])  # ... or end here
        elif fnmatchcase(key, head):
            out.append(rest)
    return out


def _remove(value: Any, path: list[str]) -> Any:
    if isinstance(value, list):
        return [_remove(item, path) for item in value]
    if not isinstance(value, dict) or not path:
        return value
    result = {}
    for key, child in value.items():
        if fnmatchcase(key, path[0]) and len(path) == 1:
            continue
        result[key] = _remove(child, path[1:]) if fnmatchcase(key, path[0]) else child
    return result


def with_warnings(response: Response, warnings: list[str], es_version: str) -> Response:
    """Elasticsearch's `Warning: 299 Elasticsearch-<version> "<text>"` headers (RFC 7234 warn-code
    299, one header per message); the official clients raise them as `ElasticsearchWarning`."""
    for text in warnings:
        quoted = text.replace("\\", "\\\\").replace('"', '\\"')
        response.headers.append("Warning", f'299 Elasticsearch-{es_version}-sparse-sidecar "{quoted}"')
    return response


def warned(request: Request, response: Response, warnings: list[str]) -> Response:
    """`with_warnings`, naming the Elasticsearch version this request's API major speaks."""
    from sidecar.api.routes.root import ES_VERSION_FOR_MAJOR  # routes import this module

    major = compat_major(request.headers.get("accept"), "Accept") or DEFAULT_MAJOR
    return with_warnings(
        response, warnings, ES_VERSION_FOR_MAJOR.get(major, ES_VERSION_FOR_MAJOR[DEFAULT_MAJOR])
    )


def endpoint_warnings(request: Request, endpoint: Any) -> list[str]:
    """The service's warnings about an endpoint (a stand-in model serves it), if it has any."""
    warnings = getattr(request.app.state.service, "endpoint_warnings", None)
    return list(warnings(endpoint)) if warnings is not None else []
