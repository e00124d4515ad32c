"""Streaming NDJSON: lines survive any chunking, oversized lines are dropped alone, structure errors
fail the whole request the way Elasticsearch does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.errors import IllegalArgumentError, RequestValidationError
from sidecar.hook.bulk import BulkOp, parse_action, read_operations
from sidecar.hook.ndjson import Line, Oversized, split_lines


async def chunks(data: bytes, cuts: list[int]) -> AsyncIterator[bytes]:
    start = 0
    for cut in sorted(set(cuts)):
        if start < cut < len(data):
            yield data[start:cut]
            start = cut
    yield data[start:]


async def collect(data: bytes, cuts: list[int], limit: int = 1000) -> list[Line]:
    return [line async for line in split_lines(chunks(data, cuts), limit)]


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10),
)
async def test_any_chunking_gives_the_same_lines(lines: list[bytes], cuts: list[int]) -> None:
    data = b"".join(line.rstrip(b"\r") + b"\n" for line in lines)
    assert await collect(data, cuts) == [line.rstrip(b"\r") for line in lines]


async def test_crlf_and_a_last_line_without_newline() -> None:
    assert await collect(b"a\r\nb\nc", [1, 2, 3]) == [b"a", b"b", b"c"]


async def test_an_oversized_line_is_replaced_and_the_next_lines_survive() -> None:
    data = b"short\n" + b"x" * 50 + b"\nafter\n" + b"y" * 20
    got = await collect(data, [3, 10, 30, 58, 70], limit=10)
    assert got == [b"short", Oversized(50), b"after", Oversized(20)]


async def ops(text: str, default_index: str | None = None, routing: str | None = None) -> list[BulkOp]:
    lines = split_lines(chunks(text.encode(), []), 100)
    return [op async for op in read_operations(lines, default_index, routing)]


def ndjson(*objects: object) -> str:
    return "".join(json.dumps(o) + "\n" for o in objects)


async def test_operations_carry_index_id_routing_and_original_bytes() -> None:
    text = ndjson(
        {"index": {"_id": "1"}},
        {"a": 1},
        {"delete": {"_index": "other", "_id": "2", "routing": "r"}},
        {"create": {"_index": "x"}},
        {"b": 2},
    )
    got = await ops("\n" + text, default_index="dflt", routing="q")
    assert [(o.position, o.op, o.index, o.doc_id, o.routing) for o in got] == [
        (0, "index", "dflt", "1", "q"),
        (1, "delete", "other", "2", "r"),
        (2, "create", "x", None, "q"),
    ]
    assert got[0].action_line == b'{"index": {"_id": "1"}}'
    assert got[0].source_line == b'{"a": 1}'
    assert got[1].source_line is None


async def test_an_oversized_document_is_marked_not_fatal() -> None:
    text = (
        ndjson({"index": {"_index": "i"}})
        + "z" * 200
        + "\n"
        + ndjson({"delete": {"_index": "i", "_id": "1"}})
    )
    got = await ops(text)
    assert got[0].oversized == 201 - 1 and got[0].source_line is None
    assert got[1].op == "delete"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json\n", "Malformed action/metadata line [1]"),
        (ndjson({"index": {}, "delete": {}}), "exactly one action"),
        (ndjson({"upsert": {"_index": "i"}}), "but found [upsert]"),
        (ndjson({"index": "i"}), "expected START_OBJECT after [index]"),
        (ndjson({"index": {"_index": "i"}}), "has no source line"),
        ('{"index": {"_index": "i", "_id": "\\udc00"}}\n{}\n', "found invalid JSON"),  # lone surrogate
    ],
    ids=["not_json", "two_actions", "unknown_action", "not_an_object", "no_source", "surrogate"],
)
async def test_malformed_structure_fails_the_request(text: str, message: str) -> None:
    with pytest.raises(IllegalArgumentError, match=message.replace("[", r"\[").replace("]", r"\]")):
        await ops(text)


def test_a_deeply_nested_action_line_is_malformed_not_a_crash() -> None:
    line = b'{"index": ' + b'{"x": ' * 5000 + b"1" + b"}" * 5001
    with pytest.raises(IllegalArgumentError, match="found invalid JSON"):
        parse_action(line, 1)


async def test_an_action_without_index_fails_validation() -> None:
    with pytest.raises(RequestValidationError, match="index is missing"):
        await ops(ndjson({"index": {"_id": "1"}}, {"a": 1}))
