"""The hook's routes inside the API app: same auth and limits, configuration, spooling, scripts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest

from sidecar.api.app import create_app
from sidecar.hook.scripts import replacement_script
from sidecar.hook.spool import Spool
from sidecar.settings import load_settings
from tests.unit.hook.conftest import PIPELINE_YAML, ScriptedUpstream
from tests.unit.worker.fakes import FakeService


@pytest.fixture
async def started(tmp_path: Path) -> AsyncIterator[Any]:
    async def start(**overrides: Any) -> tuple[httpx.AsyncClient, ScriptedUpstream, Any]:
        settings = load_settings(registry_path=tmp_path / "r.sqlite3", **overrides)
        app = create_app(settings, service=FakeService())
        context = app.router.lifespan_context(app)
        await context.__aenter__()
        opened.append(context)
        upstream = ScriptedUpstream()
        if app.state.hook is not None:
            await app.state.hook.upstream.close()
            app.state.hook.upstream = upstream
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sidecar")
        clients.append(client)
        return client, upstream, app

    opened: list[Any] = []
    clients: list[httpx.AsyncClient] = []
    yield start
    for client in clients:
        await client.aclose()
    for context in opened:
        await context.__aexit__(None, None, None)


@pytest.fixture
def pipeline_file(tmp_path: Path) -> Path:
    path = tmp_path / "hook.yaml"
    path.write_text(PIPELINE_YAML.format(skip="false"), encoding="utf-8")
    return path


NDJSON = {"content-type": "application/vnd.elasticsearch+x-ndjson; compatible-with=8"}


async def test_bulk_and_document_routes_enrich(started: Any, pipeline_file: Path) -> None:
    client, upstream, _ = await started(hook_pipelines=[pipeline_file])
    data = json.dumps({"index": {"_id": "1"}}) + "\n" + json.dumps({"title": "a", "body": "b"}) + "\n"
    answer = await client.post("/articles/_bulk?refresh=wait_for", content=data, headers=NDJSON)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-elastic-product"] == "Elasticsearch"
    assert answer.headers["warning"] == "299 test"
    method, path, params, sent = upstream.calls[0]
    assert (method, path, params) == ("POST", "/articles/_bulk", [("refresh", "wait_for")])
    assert json.loads(sent.splitlines()[1])["ml"]["tokens"] == {"a": 1.1, "b": 1.1}
    for method, url in (
        ("PUT", "/articles/_doc/a%2Fb"),
        ("POST", "/articles/_doc"),
        ("PUT", "/articles/_create/2"),
    ):
        answer = await client.request(method, url, json={"title": "t", "body": "u"})
        assert answer.status_code == 201, answer.text
    assert [c[1] for c in upstream.calls[1:]] == [
        "/articles/_doc/a%2Fb",
        "/articles/_doc",
        "/articles/_create/2",
    ]


async def test_the_api_keys_protect_the_hook(started: Any, pipeline_file: Path) -> None:
    client, upstream, _ = await started(hook_pipelines=[pipeline_file], api_keys=["s3cret"])
    data = json.dumps({"delete": {"_index": "x", "_id": "1"}}) + "\n"
    refused = await client.post("/_bulk", content=data, headers=NDJSON)
    assert refused.status_code == 401 and upstream.calls == []
    allowed = await client.post("/_bulk", content=data, headers={**NDJSON, "authorization": "ApiKey s3cret"})
    assert allowed.status_code == 200


async def test_the_body_limit_applies(started: Any, pipeline_file: Path) -> None:
    client, upstream, _ = await started(hook_pipelines=[pipeline_file], max_body_bytes=100)
    data = (json.dumps({"index": {"_index": "x"}}) + "\n" + json.dumps({"t": "x" * 200}) + "\n").encode()
    answer = await client.post("/_bulk", content=data, headers=NDJSON)
    assert answer.status_code == 413 and upstream.calls == []


async def test_an_unconfigured_hook_says_so(started: Any) -> None:
    client, _, _ = await started()
    answer = await client.post("/_bulk", content=b"{}\n", headers=NDJSON)
    assert answer.status_code == 400
    assert "SIDECAR_HOOK_UPSTREAM_URL" in answer.json()["error"]["reason"]


async def test_spool_rolls_over_to_a_file_and_reads_back() -> None:
    spool = Spool(memory_bytes=10)
    await spool.write(b"0123456789")
    assert isinstance(spool.body(), bytes)
    await spool.write(b"abcdef")
    body = spool.body()
    assert not isinstance(body, bytes)
    assert b"".join([chunk async for chunk in body]) == b"0123456789abcdef" and spool.size == 16
    spool.close()


def test_replacement_scripts_escape_names_and_pass_values_as_params() -> None:
    script = replacement_script({"a.it's": {"x": 1.0}, "b": "h"})
    assert script == {
        "source": "if (!(ctx._source['a'] instanceof Map)) { ctx._source['a'] = new HashMap(); } "
        "ctx._source['a']['it\\'s'] = params['p0']; ctx._source['b'] = params['p1'];",
        "lang": "painless",
        "params": {"p0": {"x": 1.0}, "p1": "h"},
    }


async def _raw(app: Any, method: str, raw_path: bytes, body: bytes) -> tuple[int, bytes]:
    """One request with its path exactly as a client may send it (httpx would resolve `..`)."""
    path = raw_path.decode("latin-1")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": unquote(path), "raw_path": raw_path, "query_string": b"",
        "root_path": "", "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1), "server": ("sidecar", 80),
    }  # fmt: skip
    sent: list[dict[str, Any]] = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize(
    ("raw_path", "forwarded"),
    [
        (b"/articles/_doc/..", "/articles/_doc/%2E%2E"),
        (b"/articles/_doc/%2E%2E", "/articles/_doc/%2E%2E"),
        (b"/articles/_create/.", "/articles/_create/%2E"),
        (b"/../_doc/1", "/%2E%2E/_doc/1"),
    ],
)
async def test_dot_segments_stay_names_on_the_way_to_the_engine(
    started: Any, pipeline_file: Path, raw_path: bytes, forwarded: str
) -> None:
    # Resolved as dot-segments, `PUT /x/_doc/..` would reach `PUT /x` (create index) with the body.
    _, upstream, app = await started(hook_pipelines=[pipeline_file])
    status, _ = await _raw(app, "PUT", raw_path, b'{"title": "t", "body": "u"}')
    assert status == 201
    assert [c[1] for c in upstream.calls] == [forwarded]


async def test_date_math_index_names_in_the_path_are_resolved(started: Any, pipeline_file: Path) -> None:
    client, upstream, _ = await started(hook_pipelines=[pipeline_file])
    data = json.dumps({"index": {"_id": "1"}}) + "\n" + json.dumps({"title": "a", "body": "b"}) + "\n"
    before = datetime.now(UTC).strftime("%Y.%m.%d")
    answer = await client.post(f"/{quote('<articles-{now/d}>', safe='')}/_bulk", content=data, headers=NDJSON)
    assert answer.status_code == 200, answer.text
    after = datetime.now(UTC).strftime("%Y.%m.%d")
    _, path, _, sent = upstream.calls[0]
    assert path in {f"/articles-{before}/_bulk", f"/articles-{after}/_bulk"}  # midnight may pass
    assert json.loads(sent.splitlines()[1])["ml"]["tokens"] == {"a": 1.1, "b": 1.1}
    answer = await client.put(
        f"/{quote('<articles-{now/d}>', safe='')}/_doc/7", json={"title": "t", "body": "u"}
    )
    assert answer.status_code == 201, answer.text
    assert upstream.calls[1][1].endswith("/_doc/7") and upstream.calls[1][1].startswith("/articles-20")


async def test_an_unencoded_slash_in_an_index_is_no_route(started: Any, pipeline_file: Path) -> None:
    client, upstream, _ = await started(hook_pipelines=[pipeline_file])
    answer = await client.post("/a/b/_bulk", content=b'{"delete": {"_id": "1"}}\n', headers=NDJSON)
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "no handler found for uri [/a/b/_bulk] and method [POST]",
        "status": 400,
    }
    assert upstream.calls == []
