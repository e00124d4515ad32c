"""Enrichment of one window of bulk operations, operation type by operation type."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sidecar.enrichment import content_hash
from sidecar.hook.bulk import BulkOp
from sidecar.hook.window import Outcome
from tests.unit.hook.conftest import HookFactory, pipeline_config
from tests.unit.worker.fakes import FakeService, sparse_of


def op(kind: str, index: str, doc_id: str | None, source: Any = None, position: int = 0) -> BulkOp:
    meta: dict[str, Any] = {"_index": index}
    if doc_id is not None:
        meta["_id"] = doc_id
    line = None if source is None else (source if isinstance(source, bytes) else json.dumps(source).encode())
    return BulkOp(position, kind, index, doc_id, None, json.dumps({kind: meta}).encode(), line)


def source_of(outcome: Outcome) -> dict[str, Any]:
    assert outcome.error is None and outcome.source is not None
    return dict(json.loads(outcome.source))


async def test_matching_documents_are_enriched_others_pass_byte_for_byte(make_hook: HookFactory) -> None:
    hook = make_hook()
    raw = b'{"title": "Red  Fox", "body": "jumps", "n": 1.50}'
    ops = [
        op("index", "articles-1", "1", raw),
        op("index", "articles-raw", "2", raw),  # excluded by `-articles-raw`
        op("index", "logs", "3", raw),
        op("delete", "articles-1", "4"),
    ]
    first, excluded, other, delete = await hook.processor.process(ops)
    assert source_of(first) == {
        "title": "Red  Fox", "body": "jumps", "n": 1.5,
        "ml": {"tokens": {"jumps": 1.5, "fox": 1.3, "red": 1.3}},
    }  # fmt: skip
    assert first.source is not None and first.source.startswith(raw[:-1])  # spliced: original bytes kept
    assert (excluded.source, other.source, delete.source) == (raw, raw, None)
    assert delete.forward == ops[3].action_line + b"\n"


async def test_a_document_without_its_input_gets_a_400_item(make_hook: HookFactory) -> None:
    hook = make_hook()
    [outcome] = await hook.processor.process([op("create", "articles", "7", {"title": "only title"})])
    assert outcome.forward is None and outcome.engine_items == 0
    assert outcome.error == {
        "create": {
            "_index": "articles",
            "_id": "7",
            "status": 400,
            "error": {
                "type": "illegal_argument_exception",
                "reason": "pipeline [articles] cannot enrich the document: input field [body] is missing",
                "index": "articles",
                "caused_by": {"type": "missing_input_field", "reason": "input field [body] is missing"},
            },
        }
    }


async def test_documents_with_comments_are_enriched_as_the_engines_read_them(make_hook: HookFactory) -> None:
    # Elasticsearch and OpenSearch accept `/* */` and `//` comments in documents.
    hook = make_hook(stored={"1": {"title": "old", "body": "kept"}})
    commented = b'{"title": "Red /* not a comment */ Fox", /* c */ "body": "jumps"} // trailing }'
    indexed, updated = await hook.processor.process(
        [
            op("index", "articles", "9", commented),
            op("update", "articles", "1", b'{"doc": {"title": "new" /* c */}}'),
        ]
    )
    assert source_of(indexed) == {
        "title": "Red /* not a comment */ Fox", "body": "jumps",
        "ml": {"tokens": sparse_of("Red /* not a comment */ Fox\njumps")},
    }  # fmt: skip
    # The partial update replaces the vector (a scripted companion), its body re-serialised.
    assert updated.companion is not None and json.loads(updated.source or b"") == {"doc": {"title": "new"}}
    script = json.loads(updated.companion.splitlines()[1])["script"]
    assert script["params"]["p0"] == sparse_of("new\nkept")


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (b"{not json", "failed to parse: Expecting property name"),
        (b"[1, 2]", "failed to parse: expected an object, found [list]"),
        (b'{"title": "a", "body": ' + b'{"x": ' * 5000 + b"1" + b"}" * 5001, "nesting deeper than [256]"),
        (b'{"title": "\\udc00", "body": "b"}', "lone surrogate"),
        (b'{"title": "\xed\xa0\x80", "body": "b"}', "invalid UTF-8 at byte [11]"),
    ],
)
async def test_unreadable_sources_get_their_own_400_item(
    make_hook: HookFactory, source: bytes, reason: str
) -> None:
    hook = make_hook()
    bad, good = await hook.processor.process(
        [op("index", "articles", "1", source), op("index", "articles", "2", {"title": "t", "body": "b"}, 1)]
    )
    assert bad.forward is None and bad.error is not None
    item = bad.error["index"]
    assert (item["status"], item["error"]["type"]) == (400, "mapper_parsing_exception")
    assert reason in item["error"]["reason"]
    assert source_of(good)["ml"]["tokens"] == sparse_of("t\nb")


async def test_paired_surrogate_escapes_are_text(make_hook: HookFactory) -> None:
    hook = make_hook()
    [outcome] = await hook.processor.process(
        [op("index", "articles", "1", b'{"title": "\\ud83d\\ude00", "body": "b"}')]
    )
    assert source_of(outcome)["title"] == "\U0001f600"


async def test_overloaded_inference_answers_429_for_the_pipeline_items(
    make_hook: HookFactory, service: FakeService
) -> None:
    service.overloaded_calls = 1
    hook = make_hook()
    outcomes = await hook.processor.process(
        [op("index", "articles", "1", {"title": "a", "body": "b"}), op("index", "logs", "2", {"x": 1})]
    )
    assert outcomes[0].error is not None and outcomes[0].error["index"]["status"] == 429
    assert outcomes[1].error is None


async def test_an_oversized_document_gets_a_413_item(make_hook: HookFactory) -> None:
    hook = make_hook(hook_max_document_bytes=64)
    big = op("index", "logs", "1")
    big.oversized = 100
    [outcome] = await hook.processor.process([big])
    assert outcome.error is not None and outcome.error["index"]["status"] == 413


async def test_skip_if_unchanged_reuses_the_stored_vector(
    make_hook: HookFactory, service: FakeService
) -> None:
    spec = pipeline_config(skip=True).fields[0]
    digest = content_hash(spec, "same\ntext")
    stored = {"1": {"ml": {"tokens": {"kept": 9.0}, "tokens_hash": digest}}}
    hook = make_hook(skip=True, stored=stored)
    same, new = await hook.processor.process(
        [
            op("index", "articles", "1", {"title": "same", "body": "text"}),
            op("index", "articles", "2", {"title": "x", "body": "y"}),
        ]
    )
    assert source_of(same)["ml"] == {"tokens": {"kept": 9.0}, "tokens_hash": digest}
    assert source_of(new)["ml"]["tokens_hash"] == content_hash(spec, "x\ny")
    assert service.texts == ["x\ny"]


async def test_an_update_touching_the_inputs_gets_a_scripted_replacement(make_hook: HookFactory) -> None:
    hook = make_hook(stored={"1": {"title": "old title", "body": "kept body"}})
    touching, untouched, upsert = await hook.processor.process(
        [
            op("update", "articles", "1", {"doc": {"title": "new title"}}),
            op("update", "articles", "2", {"doc": {"views": 3}}),
            op("update", "articles", "3", {"script": {"source": "x"}, "upsert": {"title": "t", "body": "b"}}),
        ]
    )
    # The client's update goes as sent; the companion replaces the vector (from the merged text).
    assert touching.source == b'{"doc": {"title": "new title"}}'
    assert touching.engine_items == 2 and touching.companion is not None
    action, body = touching.companion.decode().splitlines()
    assert json.loads(action) == {"update": {"_index": "articles", "_id": "1", "retry_on_conflict": 3}}
    script = json.loads(body)["script"]
    assert script["params"]["p0"] == sparse_of("new title\nkept body")
    assert script["source"].startswith("if (!(ctx._source['ml'] instanceof Map))")
    assert untouched.source == b'{"doc": {"views": 3}}' and untouched.companion is None
    assert source_of(upsert)["upsert"]["ml"]["tokens"] == sparse_of("t\nb")
    assert upsert.companion is None


async def test_a_partial_update_of_a_missing_document_is_left_to_the_engine(make_hook: HookFactory) -> None:
    hook = make_hook(stored={})
    plain, upserted = await hook.processor.process(
        [
            op("update", "articles", "9", {"doc": {"title": "t"}}),
            op("update", "articles", "9", {"doc": {"title": "t"}, "doc_as_upsert": True}),
        ]
    )
    assert plain.companion is None and plain.error is None  # the engine answers document_missing
    assert upserted.error is not None  # it would be created without its body: refused


async def test_an_update_emptying_the_inputs_removes_the_vector(make_hook: HookFactory) -> None:
    hook = make_hook(stored={"1": {"title": "old title", "body": ""}})
    [emptied] = await hook.processor.process([op("update", "articles", "1", {"doc": {"title": " "}})])
    assert emptied.error is None and emptied.companion is not None
    script = json.loads(emptied.companion.decode().splitlines()[1])["script"]
    assert script["source"] == (
        "if (ctx._source instanceof Map && ctx._source['ml'] instanceof Map) { ctx._source['ml'].remove('tokens'); } "
        "if (ctx._source instanceof Map && ctx._source['ml'] instanceof Map) "
        "{ ctx._source['ml'].remove('tokens_hash'); }"
    )
    assert script["params"] == {}
