"""Hostile input at the edge of the API: invalid text, absurd headers, remote endpoints that could
never work, and secrets that must not come back in any answer or log record."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest

from tests.unit.api.conftest import DENSE_ID, RERANK_ID, SPARSE_ID, ClientFactory

JSON = {"content-type": "application/json"}
ESCAPED = b'"\\udc00"'  # a lone surrogate escape: valid JSON syntax, not valid text
RAW = b'"\xed\xa0\x80"'  # the surrogate U+D800 encoded as bytes: not valid UTF-8


@pytest.mark.parametrize("text", [ESCAPED, RAW], ids=["escaped", "raw_bytes"])
@pytest.mark.parametrize(
    ("path", "template"),
    [
        (f"/_inference/sparse_embedding/{SPARSE_ID}", b'{"input": %s}'),
        (f"/_inference/text_embedding/{DENSE_ID}", b'{"input": [%s]}'),
        (f"/_inference/rerank/{RERANK_ID}", b'{"query": "q", "input": ["a", %s]}'),
        (f"/_inference/rerank/{RERANK_ID}", b'{"query": %s, "input": ["a"]}'),
        (f"/_sidecar/hugging_face/{SPARSE_ID}", b'{"inputs": [%s]}'),
    ],
)
async def test_invalid_text_is_a_400_parse_error(
    client: httpx.AsyncClient, path: str, template: bytes, text: bytes
) -> None:
    response = await client.post(path, content=template % text, headers=JSON)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "x_content_parse_exception"
    assert error["reason"].startswith("Failed to parse request body: ")
    assert error["root_cause"] == [{"type": error["type"], "reason": error["reason"]}]


async def test_paired_surrogate_escapes_and_comments_are_accepted(client: httpx.AsyncClient) -> None:
    # Elasticsearch's parser allows comments; a surrogate pair is one character.
    body = b'{"input": /* c */ "\\ud83d\\ude00 fox" // trailing\n}'
    response = await client.post(f"/_inference/sparse_embedding/{SPARSE_ID}", content=body, headers=JSON)
    assert response.status_code == 200, response.text


async def test_deep_nesting_is_a_400(client: httpx.AsyncClient) -> None:
    body = b'{"input": "a", "task_settings": ' + b'{"x": ' * 5000 + b"1" + b"}" * 5001
    response = await client.post(f"/_inference/{SPARSE_ID}", content=body, headers=JSON)
    assert response.status_code == 400, response.text
    assert "nesting deeper than" in response.json()["error"]["reason"]


@pytest.mark.parametrize("header", ["accept", "content-type"])
async def test_a_huge_compatibility_version_is_a_400(client: httpx.AsyncClient, header: str) -> None:
    vendor = "application/vnd.elasticsearch+json; compatible-with=" + "9" * 5000
    response = await client.post(f"/_inference/{SPARSE_ID}", json={"input": "x"}, headers={header: vendor})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "media_type_header_exception"
    assert len(error["reason"]) < 300


SECRET = "sk-live-0123456789abcdef"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"url": "file:///etc/passwd"}, "Invalid url [file:///etc/passwd] received for field [url]"),
        ({"url": "http://[::1"}, "it is malformed"),
        ({"url": "http://"}, "it has no host"),
        ({"url": "http://ok.example", "api_key": SECRET + "\r\n"}, "Invalid value for field [api_key]"),
        ({"url": "http://ok.example", "api_key": SECRET + "é"}, "Invalid value for field [api_key]"),
    ],
    ids=["file_url", "malformed_url", "no_host", "crlf_key", "non_ascii_key"],
)
async def test_remote_endpoints_that_could_never_work_are_refused_at_put(
    client: httpx.AsyncClient, settings: dict[str, str], message: str
) -> None:
    body = {"service": "hugging_face", "service_settings": settings}
    response = await client.put("/_inference/sparse_embedding/hostile-remote", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "validation_exception"
    assert message in error["reason"]
    assert SECRET not in response.text
    assert (await client.get("/_inference/hostile-remote")).status_code == 404


async def test_credentials_in_a_remote_url_are_not_echoed(client: httpx.AsyncClient) -> None:
    body = {"service": "hugging_face", "service_settings": {"url": "ftp://user:hunter2@host/x"}}
    response = await client.put("/_inference/sparse_embedding/hostile-ftp", json=body)
    assert response.status_code == 400, response.text
    assert "hunter2" not in response.text and "<redacted>@host" in response.text


async def test_a_transport_error_quoting_the_key_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    """An endpoint stored before the PUT checks existed: the client's error names the header."""
    from sidecar.errors import RemoteServiceError
    from sidecar.inference.services.remote import RemoteCaller, RetryPolicy

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()  # the request never gets this far: the client refuses the header first

    caplog.set_level(logging.DEBUG, logger="sidecar")  # httpcore's own DEBUG trace is silenced at start
    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    caller = RemoteCaller("hugging_face", "old", requests_per_minute=0, policy=RetryPolicy(max_retries=0))
    try:
        with pytest.raises(RemoteServiceError) as raised:
            await caller.post(
                f"http://127.0.0.1:{port}/embed", {"inputs": ["a"]}, {"Authorization": f"Bearer {SECRET}\r\n"}
            )
    finally:
        await caller.aclose()
        server.close()
    assert raised.value.status == 502
    assert SECRET not in raised.value.reason and "<redacted>" in raised.value.reason
    assert raised.value.__cause__ is None and raised.value.__context__ is None
    assert SECRET not in caplog.text


async def test_an_inference_id_longer_than_a_document_id_is_refused(client: httpx.AsyncClient) -> None:
    # Elasticsearch stores the endpoint as the document `model_<id>`; document ids are limited to
    # 512 bytes, so a longer id fails that document's validation (400).
    body = {"service": "elasticsearch", "service_settings": {"model_id": ".splade_tiny"}}
    longest = "a" * (512 - len("model_"))
    too_long = "a" * 10_000
    response = await client.put(f"/_inference/sparse_embedding/{too_long}", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "action_request_validation_exception"
    assert error["reason"].endswith("is too long, must be no longer than 512 bytes but was: 10006;")
    response = await client.put(f"/_inference/sparse_embedding/{longest}", json=body)
    assert response.status_code == 200, response.text
    assert (await client.delete(f"/_inference/{longest}")).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (f"/_inference/sparse_embedding/{SPARSE_ID}", {"input": []}, "input"),
        (f"/_sidecar/hugging_face/{SPARSE_ID}", {"inputs": []}, "inputs"),
        (f"/_sidecar/custom/{SPARSE_ID}", {"input": []}, "inputs"),
    ],
)
async def test_an_empty_input_list_is_a_validation_error(
    client: httpx.AsyncClient, path: str, body: dict[str, list[str]], field: str
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "action_request_validation_exception"
    assert (
        response.json()["error"]["reason"]
        == f"Validation Failed: 1: Field [{field}] cannot be an empty array;"
    )


@pytest.mark.parametrize(
    "model_id", ["/etc/passwd", "/etc", "/no/such/dir", "../models", "package:cognition/../.."]
)
async def test_local_model_paths_outside_the_model_directories_are_refused_alike(
    client: httpx.AsyncClient, model_id: str
) -> None:
    # One answer whether the path exists, is a file or a folder: the API is no file-system probe.
    body = {"service": "elasticsearch", "service_settings": {"model_id": model_id}}
    response = await client.put("/_inference/sparse_embedding/hostile-path", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "validation_exception"
    assert error["reason"] == (
        f"Validation Failed: 1: [service_settings] model_id [{model_id}] is not a packaged model, a hub id "
        "or a directory under the configured model directories (SIDECAR_MODEL_DIRS);"
    )


async def test_a_sparse_vocabulary_file_outside_the_model_directories_is_refused(
    client: httpx.AsyncClient,
) -> None:
    # A vocabulary names tokens in answers: /etc/passwd would come back line by line.
    settings = {"url": "http://127.0.0.1:9/embed", "vocab": "/etc/passwd"}
    body = {"service": "hugging_face", "service_settings": settings}
    response = await client.put("/_inference/sparse_embedding/hostile-vocab", json=body)
    assert response.status_code == 400, response.text
    assert "model_id [/etc/passwd] is not a packaged model" in response.json()["error"]["reason"]


async def test_a_local_model_under_the_model_directories_is_served(open_client: ClientFactory) -> None:
    from sidecar.inference.models import resolve_model_path

    folder = Path(resolve_model_path(".splade_tiny"))
    body = {"service": "elasticsearch", "service_settings": {"model_id": str(folder)}}
    async with open_client(model_dirs=[folder.parent]) as allowed:
        response = await allowed.put("/_inference/sparse_embedding/from-a-folder", json=body)
        assert response.status_code == 200, response.text
        answer = await allowed.post("/_inference/from-a-folder", json={"input": "red fox"})
        assert answer.status_code == 200 and answer.json()["sparse_embedding"][0]["embedding"]
    async with open_client() as default:
        response = await default.put("/_inference/sparse_embedding/from-a-folder", json=body)
        assert response.status_code == 400, response.text


def test_model_directories_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    from sidecar.settings import load_settings

    monkeypatch.setenv("SIDECAR_MODEL_DIRS", "/srv/models, /opt/models")
    assert load_settings().model_dirs == [Path("/srv/models"), Path("/opt/models")]
    monkeypatch.delenv("SIDECAR_MODEL_DIRS")
    assert load_settings().model_dirs == []


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("http://127.0.0.1:9/embed", {"Authorization": f"Bearer {SECRET}é"}),
        ("http://[::1/embed", {}),
        ("file:///etc/passwd", {}),
    ],
    ids=["non_ascii_key", "malformed_url", "file_url"],
)
async def test_endpoints_stored_before_the_put_checks_fail_with_502_not_500(
    url: str, headers: dict[str, str]
) -> None:
    from sidecar.errors import RemoteServiceError
    from sidecar.inference.services.remote import RemoteCaller, RetryPolicy

    caller = RemoteCaller("hugging_face", "old", requests_per_minute=0, policy=RetryPolicy(max_retries=0))
    try:
        with pytest.raises(RemoteServiceError) as raised:
            await caller.post(url, {"inputs": ["a"]}, headers)
    finally:
        await caller.aclose()
    assert raised.value.status == 502 and SECRET not in raised.value.reason


async def test_an_update_cannot_bring_in_what_a_put_refuses(open_client: ClientFactory) -> None:
    settings = {"url": "http://127.0.0.1:9/embed", "api_key": "key-0123", "dimensions": 4}
    body = {"service": "hugging_face", "service_settings": settings}
    async with open_client(probe_remote_on_create=False) as client:
        created = await client.put("/_inference/text_embedding/hostile-update", json=body)
        assert created.status_code == 200, created.text
        for change in ({"api_key": SECRET + "\r\n"}, {"url": "file:///etc/passwd"}):
            response = await client.put(
                "/_inference/hostile-update/_update", json={"service_settings": change}
            )
            assert response.status_code == 400, response.text
            assert response.json()["error"]["type"] == "validation_exception"
            assert SECRET not in response.text
