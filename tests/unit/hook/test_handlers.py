"""A bulk through the hook: one request to the engine, the answer merged back in client order."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sidecar.errors import RequestValidationError, SidecarError
from sidecar.hook.handlers import handle_bulk, handle_document, merge_items
from sidecar.hook.upstream import UpstreamAnswer
from tests.unit.hook.conftest import HookFactory, ScriptedUpstream


def ndjson(*objects: object) -> bytes:
    return "".join(json.dumps(o) + "\n" for o in objects).encode()


async def body(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def bulk(hook: Any, data: bytes, params: list[tuple[str, str]] | None = None) -> Any:
    return await handle_bulk(hook, "/_bulk", params or [], body(data), default_index=None, authorization=None)


async def test_items_keep_the_client_order_with_the_hooks_own_errors(make_hook: HookFactory) -> None:
    upstream = ScriptedUpstream(statuses={"3": 409})
    hook = make_hook(upstream=upstream, hook_window_docs=2)
    data = ndjson(
        {"index": {"_index": "articles", "_id": "1"}}, {"title": "a", "body": "b"},
        {"index": {"_index": "articles", "_id": "2"}}, {"title": "no body"},
        {"create": {"_index": "logs", "_id": "3"}}, {"x": 1},
        {"update": {"_index": "articles", "_id": "4"}}, {"doc": {"title": "t", "body": "u"}},
        {"delete": {"_index": "articles", "_id": "5"}},
    )  # fmt: skip
    merged = await bulk(hook, data, [("refresh", "true"), ("filter_path", "items.*.status")])
    statuses = [
        (next(iter(i)), next(iter(i.values()))["_id"], next(iter(i.values()))["status"])
        for i in merged["items"]
    ]
    assert statuses == [
        ("index", "1", 201),
        ("index", "2", 400),
        ("create", "3", 409),
        ("update", "4", 201),
        ("delete", "5", 201),
    ]
    assert merged["errors"] is True
    [(method, path, params, sent)] = upstream.calls
    # Rendering parameters stay with the hook when it adds items of its own; the others go on.
    assert (method, path, params) == ("POST", "/_bulk", [("refresh", "true")])
    ops = ("index", "create", "update", "delete")
    lines = [json.loads(line) for line in sent.splitlines()]
    actions = [(k, v["_id"]) for line in lines for k, v in line.items() if k in ops]
    # Item 2 failed here and is not sent; the enriched update is followed by its scripted companion.
    assert actions == [("index", "1"), ("create", "3"), ("update", "4"), ("update", "4"), ("delete", "5")]
    assert b'"no body"' not in sent  # the failed document never reaches the engine


async def test_without_own_items_the_engine_answer_passes_verbatim(make_hook: HookFactory) -> None:
    upstream = ScriptedUpstream()
    hook = make_hook(upstream=upstream)
    answer = await bulk(
        hook, ndjson({"index": {"_index": "logs", "_id": "1"}}, {"x": 1}), [("filter_path", "items")]
    )
    assert isinstance(answer, UpstreamAnswer) and answer.status == 200 and answer.warnings == ["299 test"]
    assert upstream.calls[0][2] == [("filter_path", "items")]


async def test_an_engine_error_answer_is_passed_on(make_hook: HookFactory) -> None:
    hook = make_hook(upstream=ScriptedUpstream(status=429))
    answer = await bulk(hook, ndjson({"index": {"_index": "articles"}}, {"title": "x", "body": "y"}))
    assert isinstance(answer, UpstreamAnswer) and answer.status == 429


async def test_when_every_item_fails_here_the_engine_is_not_called(make_hook: HookFactory) -> None:
    upstream = ScriptedUpstream()
    hook = make_hook(upstream=upstream)
    merged = await bulk(hook, ndjson({"index": {"_index": "articles", "_id": "1"}}, {"nope": 1}))
    assert upstream.calls == []
    assert merged["errors"] is True and merged["items"][0]["index"]["status"] == 400


async def test_an_empty_bulk_is_refused(make_hook: HookFactory) -> None:
    with pytest.raises(RequestValidationError, match="no requests added"):
        await bulk(make_hook(), b"\n\n")


async def test_large_bulks_are_spooled_to_a_file(make_hook: HookFactory) -> None:
    upstream = ScriptedUpstream()
    hook = make_hook(upstream=upstream, hook_spool_memory_bytes=256)
    docs = [o for i in range(50) for o in ({"index": {"_index": "logs", "_id": str(i)}}, {"n": i})]
    answer = await bulk(hook, ndjson(*docs))
    assert len(json.loads(answer.body)["items"]) == 50
    assert upstream.calls[0][3] == ndjson(*docs)  # byte for byte


def test_merge_reports_the_first_failure_of_an_enriched_update() -> None:
    ok = {"update": {"_id": "1", "status": 200}}
    bad = {"update": {"_id": "1", "status": 404, "error": {"type": "document_missing_exception"}}}
    own = {"index": {"_id": "2", "status": 400, "error": {"type": "x"}}}
    merged = merge_items([2, own, 2], {"took": 1, "errors": True, "items": [ok, ok, ok, bad]}, 5)
    assert merged["items"] == [ok, own, bad] and merged["took"] == 5 and merged["errors"] is True
    with pytest.raises(SidecarError, match="answered 1 bulk items for 2"):
        merge_items([1, 1], {"items": [ok]}, 1)


async def test_a_single_document_failure_is_the_requests_error(make_hook: HookFactory) -> None:
    upstream = ScriptedUpstream()
    hook = make_hook(upstream=upstream)
    failed = await handle_document(
        hook, "PUT", "/articles/_doc/1", [], b'{"title": "t"}', index="articles", doc_id="1", create=False,
        authorization=None,
    )  # fmt: skip
    assert isinstance(failed, tuple)
    status, error = failed
    assert status == 400 and error["error"]["root_cause"][0]["type"] == "illegal_argument_exception"
    answer = await handle_document(
        hook, "PUT", "/articles/_create/1", [("routing", "r")], b'{"title": "t", "body": "b"}',
        index="articles", doc_id="1", create=True, authorization=None,
    )  # fmt: skip
    assert not isinstance(answer, tuple) and answer.status == 201
    assert json.loads(upstream.calls[-1][3])["ml"]["tokens"] == {"b": 1.1, "t": 1.1}
    assert upstream.calls[-1][2] == [("routing", "r")]
