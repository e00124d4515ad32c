from __future__ import annotations

import pytest

from sidecar.deadletter import DeadLetter
from sidecar.sources.kafka import Message
from sidecar.worker.decode import Envelope, decode
from tests.unit.worker.fakes import pipeline


def message(value: bytes | None, key: bytes | None = b"k1", offset: int = 7) -> Message:
    return Message("docs", 2, offset, key, value, (("trace", b"abc"),), 1234)


@pytest.mark.parametrize(
    ("value", "key", "error_type"),
    [
        (None, b"k", "tombstone"),
        (b"\xff\xfe{}", b"k", "invalid_encoding"),
        (b'{"title": ', b"k", "invalid_json"),
        (b'{"title": NaN}', b"k", "invalid_json"),
        (b"[1, 2]", b"k", "not_an_object"),
        (b'"text"', b"k", "not_an_object"),
        (b'{"title": "x"}', None, "missing_document_id"),
        (b'{"title": "x"}', b"\xff", "invalid_document_id"),
        (b'{"title": "x"}', b"k" * 513, "invalid_document_id"),
        (b'{"title": "' + b"x" * 2000 + b'"}', b"k", "message_too_large"),
    ],
)
def test_poison_messages_become_dead_letters(value: bytes | None, key: bytes | None, error_type: str) -> None:
    config = pipeline(source__kafka__max_message_bytes=1000)
    letter = decode(message(value, key), config)
    assert isinstance(letter, DeadLetter)
    assert letter.error_type == error_type and letter.reason
    assert (letter.topic, letter.partition, letter.offset) == ("docs", 2, 7)
    assert letter.value == value and letter.key == key and letter.stage == "decode"


def test_id_from_key() -> None:
    env = decode(message(b'{"title": "x"}', key="ключ".encode()), pipeline())
    assert isinstance(env, Envelope) and env.doc_id == "ключ" and env.source == {"title": "x"}


@pytest.mark.parametrize(
    ("value", "expected"), [(b'{"meta": {"id": "a-1"}}', "a-1"), (b'{"meta": {"id": 5}}', "5")]
)
def test_id_from_field(value: bytes, expected: str) -> None:
    config = pipeline(source__kafka__document_id={"from": "field", "field": "meta.id"})
    env = decode(message(value, key=None), config)
    assert isinstance(env, Envelope) and env.doc_id == expected


@pytest.mark.parametrize("value", [b'{"meta": {}}', b'{"meta": {"id": true}}', b'{"meta": {"id": ""}}'])
def test_bad_id_field(value: bytes) -> None:
    config = pipeline(source__kafka__document_id={"from": "field", "field": "meta.id"})
    letter = decode(message(value), config)
    assert isinstance(letter, DeadLetter) and letter.error_type in {
        "missing_document_id",
        "invalid_document_id",
    }


def test_id_from_coordinates() -> None:
    config = pipeline(source__kafka__document_id={"from": "coordinates"})
    env = decode(message(b"{}", key=None, offset=42), config)
    assert isinstance(env, Envelope) and env.doc_id == "docs+2+42"


def test_routing_from_field() -> None:
    config = pipeline(sink__routing="tenant")
    env = decode(message(b'{"tenant": "acme"}'), config)
    assert isinstance(env, Envelope) and env.routing == "acme"
    letter = decode(message(b'{"title": "no tenant"}'), config)
    assert isinstance(letter, DeadLetter) and letter.error_type == "invalid_routing"


DEEP = b'{"title": "t", "n": ' + b"[" * 5000 + b"]" * 5000 + b"}"
JUST_TOO_DEEP = b'{"title": "t", "n": ' + b"[" * 256 + b"]" * 256 + b"}"  # 257 levels with the object


@pytest.mark.parametrize(
    ("value", "error_type", "words"),
    [
        (DEEP, "invalid_json", "nesting deeper than [256]"),
        (JUST_TOO_DEEP, "invalid_json", "nesting deeper than [256]"),
        (b'{"title": "t", "note": "a\\udc00b"}', "invalid_text", "lone surrogate"),
        (b'{"title": "t", "k\\ud800": 1}', "invalid_text", "lone surrogate"),
        (b'{"title": "t", "list": [{"x": "\\udfff"}]}', "invalid_text", "lone surrogate"),
        (b'{"meta": {"id": "x\\udc00"}, "title": "t"}', "invalid_text", "lone surrogate"),
        (b'{"title": "t", /* c */ "n": NaN}', "invalid_json", "NaN"),
    ],
)
def test_deep_nesting_and_lone_surrogates_are_poison(value: bytes, error_type: str, words: str) -> None:
    config = pipeline(source__kafka__document_id={"from": "field", "field": "meta.id"})
    letter = decode(message(value), config)
    assert isinstance(letter, DeadLetter) and letter.error_type == error_type and words in letter.reason


def test_comments_are_read_as_the_engines_read_them() -> None:
    env = decode(message(b'{"title": "a // not a comment", /* note */ "n": 1} // end'), pipeline())
    assert isinstance(env, Envelope) and env.source == {"title": "a // not a comment", "n": 1}


def test_surrogate_pairs_and_escaped_backslashes_are_valid_text() -> None:
    value = b'{"title": "smile \\ud83d\\ude00", "path": "c:\\\\udc00"}'
    env = decode(message(value), pipeline())
    assert isinstance(env, Envelope) and env.source["title"] == "smile \U0001f600"
    assert env.source["path"] == "c:\\udc00"


def test_tombstones_follow_on_null() -> None:
    letter = decode(message(None), pipeline())
    assert (
        isinstance(letter, DeadLetter) and letter.error_type == "tombstone" and "dead_letter" in letter.reason
    )
    assert decode(message(None), pipeline(errors={"on_null": "ignore"})) is None
    env = decode(message(None, key=b"doc-1"), pipeline(errors={"on_null": "delete"}))
    assert isinstance(env, Envelope) and env.delete and env.doc_id == "doc-1"
    keyless = decode(message(None, key=None), pipeline(errors={"on_null": "delete"}))
    assert isinstance(keyless, DeadLetter) and keyless.error_type == "missing_document_id"
