"""Optional API keys: the schemes clients and Elasticsearch services send, 401s, and no leaks."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from syrupy.assertion import SnapshotAssertion

from tests.unit.api.conftest import SPARSE_ID, ClientFactory

KEY_ID, KEY = "ingest", "k3y-s3cret-value"
ENCODED = base64.b64encode(f"{KEY_ID}:{KEY}".encode()).decode()


@pytest.fixture
async def secured(open_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    # No provider runs here: the remote endpoint below is stored without the create-time test call.
    async with open_client(api_keys=[f"{KEY_ID}:{KEY}"], probe_remote_on_create=False) as client:
        yield client


@pytest.mark.parametrize(
    "authorization",
    [f"ApiKey {ENCODED}", f"Bearer {KEY}", f"apikey {ENCODED}", f"Bearer {KEY_ID}:{KEY}"],
)
async def test_accepted_credentials(secured: httpx.AsyncClient, authorization: str) -> None:
    response = await secured.get(f"/_inference/{SPARSE_ID}", headers={"authorization": authorization})
    assert response.status_code == 200, response.text
    assert response.json()["endpoints"][0]["inference_id"] == SPARSE_ID


async def test_missing_credentials(secured: httpx.AsyncClient, snapshot: SnapshotAssertion) -> None:
    response = await secured.get("/_inference")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'ApiKey, Bearer realm="security"'
    assert response.headers["x-elastic-product"] == "Elasticsearch"
    assert response.json() == snapshot


@pytest.mark.parametrize(
    "authorization",
    ["ApiKey d3Jvbmc6a2V5", "Bearer wrong", f"Basic {ENCODED}", "ApiKey", "Bearer ", "ApiKey !!!notbase64"],
)
async def test_rejected_credentials(secured: httpx.AsyncClient, authorization: str) -> None:
    response = await secured.get("/_inference", headers={"authorization": authorization})
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "security_exception"
    assert error["reason"].startswith("unable to authenticate with provided credentials")


async def test_probes_and_metrics_need_no_key(secured: httpx.AsyncClient) -> None:
    for path in ("/_sidecar/health/live", "/_sidecar/health/ready", "/metrics"):
        assert (await secured.get(path)).status_code == 200
    assert (await secured.get("/")).status_code == 401


async def test_keys_from_a_file(open_client: ClientFactory, tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("# one key per line\nfirst-key\n\n  second-key  \n", encoding="utf-8")
    async with open_client(api_keys_file=key_file) as client:
        for key in ("first-key", "second-key"):
            response = await client.get("/_inference", headers={"authorization": f"Bearer {key}"})
            assert response.status_code == 200
        assert (await client.get("/_inference", headers={"authorization": "Bearer third"})).status_code == 401


async def test_secrets_never_reach_logs_or_answers(
    secured: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = {"authorization": f"ApiKey {ENCODED}"}
    remote = {"service": "hugging_face", "service_settings": {"url": "http://tei:80", "api_key": "hf-s3cret"}}
    created = await secured.put("/_inference/text_embedding/remote-dense", json=remote, headers=headers)
    assert created.status_code == 200, created.text
    listing = await secured.get("/_inference/remote-dense", headers=headers)
    await secured.get("/_inference", headers={"authorization": "Bearer wrong-guess"})
    for answer in (created, listing):
        assert "hf-s3cret" not in answer.text
        assert "api_key" not in answer.text
    logged = "\n".join(r.getMessage() + str(vars(r)) for r in caplog.records)
    for secret in (KEY, ENCODED, "wrong-guess", "hf-s3cret"):
        assert secret not in logged
    assert "sidecar.access" in {r.name for r in caplog.records}
