"""The engine's credentials never come back: not in an answer, a log record or a metric."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from sidecar.api.app import create_app
from sidecar.errors import UpstreamUnavailableError
from sidecar.hook.upstream import Upstream
from sidecar.pipelines.schema import SinkAuth
from sidecar.settings import load_settings
from tests.unit.worker.fakes import FakeService

PASSWORD = "pw-0123456789-s3cret"


async def test_url_credentials_stay_out_of_answers_and_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sidecar")
    # Port 1 on the loopback refuses at once: every forwarded write is a 502.
    settings = load_settings(
        registry_path=tmp_path / "r.sqlite3",
        hook_upstream_url=f"http://admin:{PASSWORD}@127.0.0.1:1",
        preload_endpoints=[],
    )
    app = create_app(settings, service=FakeService())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sidecar") as client:
            answer = await client.put("/logs/_doc/1", json={"message": "m"})
            exposition = (await client.get("/metrics")).text
    assert answer.status_code == 502, answer.text
    assert "sidecar_http_requests_total" in exposition and PASSWORD not in exposition
    assert PASSWORD not in answer.text and "admin" not in answer.text
    assert "http://<redacted>@127.0.0.1:1" in answer.json()["error"]["reason"]
    assert "ingest hook forwards to [http://<redacted>@127.0.0.1:1]" in caplog.text  # the startup log
    assert "request failed" in caplog.text  # the error log
    assert PASSWORD not in caplog.text


async def test_a_credential_the_http_client_quotes_back_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()  # never reached with a content: the client refuses the header first

    caplog.set_level(logging.DEBUG, logger="sidecar")
    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    upstream = Upstream(f"http://127.0.0.1:{port}", auth=SinkAuth(api_key=SecretStr(f"{PASSWORD}\r\n")))
    try:
        with pytest.raises(UpstreamUnavailableError) as raised:
            await upstream.send("PUT", "/logs/_doc/1", [], b"{}", "application/json")
    finally:
        await upstream.close()
        server.close()
    assert PASSWORD not in raised.value.reason and "<redacted>" in raised.value.reason
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
