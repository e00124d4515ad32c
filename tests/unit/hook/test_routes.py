"""The hook's routes inside the API app: same auth and limits, configuration, spooling, scripts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

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
