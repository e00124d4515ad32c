"""Operations: Prometheus metrics, JSON logs carrying the request id, liveness and readiness."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sidecar.observability.logging import JsonFormatter, configure_logging
from tests.unit.api.conftest import SPARSE_ID, ClientFactory
from tests.unit.api.fake_service import FAKE_SPARSE_ID, FakeInferenceService


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("sidecar")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(previous)


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


async def test_access_records_are_json_with_the_request_id(
    client: httpx.AsyncClient, json_log: io.StringIO
) -> None:
    response = await client.post(
        f"/_inference/{SPARSE_ID}", json={"input": "hi"}, headers={"x-request-id": "req-7"}
    )
    missing = await client.get("/_inference/nope")
    access = [r for r in _records(json_log) if r["logger"] == "sidecar.access"]
    assert access[0]["request_id"] == response.headers["x-request-id"] == "req-7"
    assert access[0]["status"] == 200
    assert access[0]["route"] == "/_inference/{inference_id}"
    assert access[0]["method"] == "POST"
    assert access[0]["duration_ms"] >= 0
    assert access[1]["request_id"] == missing.headers["x-request-id"]
    assert access[1]["status"] == 404
    assert all(set(r) >= {"ts", "level", "logger", "message"} for r in access)


async def test_server_errors_are_logged_with_their_trace(
    fake_client: httpx.AsyncClient, fake: FakeInferenceService, json_log: io.StringIO
) -> None:
    fake.fail_with = RuntimeError("model thread crashed")
    response = await fake_client.post(f"/_inference/{FAKE_SPARSE_ID}", json={"input": "hi"})
    assert response.status_code == 500
    errors = [r for r in _records(json_log) if r["level"] == "error"]
    assert errors and "model thread crashed" in errors[0]["exception"]
    assert errors[0]["request_id"] == response.headers["x-request-id"]


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await client.post(f"/_inference/{SPARSE_ID}", json={"input": "hi"})
    await client.get("/unknown/path")
    text = (await client.get("/metrics")).text
    line = next(
        line
        for line in text.splitlines()
        if line.startswith("sidecar_http_requests_total{")
        and 'method="POST"' in line
        and 'route="/_inference/{inference_id}"' in line
        and 'status="200"' in line
    )
    assert float(line.rsplit(" ", 1)[1]) >= 3
    assert 'route="unmatched"' in text
    assert "sidecar_http_request_seconds_bucket" in text
    assert "sidecar_http_inference_in_flight" in text


async def test_liveness_and_readiness(open_client: ClientFactory) -> None:
    async with open_client() as client:
        assert (await client.get("/_sidecar/health/live")).json() == {"status": "live"}
        ready = await client.get("/_sidecar/health/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"
        client.app.state.stopping = True  # type: ignore[attr-defined]  # what SIGTERM does
        draining = await client.get("/_sidecar/health/ready")
        assert draining.status_code == 503
        assert draining.json() == {"status": "stopping"}
        assert (await client.get("/_sidecar/health/live")).status_code == 200


async def test_not_ready_when_the_registry_fails(open_client: ClientFactory) -> None:
    service = FakeInferenceService()

    def broken(task_type: Any = None) -> list[Any]:
        raise ConnectionError("registry index unreachable")

    service.registry.list = broken  # type: ignore[method-assign]
    async with open_client(service=service) as client:
        ready = await client.get("/_sidecar/health/ready")
    assert ready.status_code == 503
    assert ready.json() == {"status": "registry_unreachable", "reason": "ConnectionError"}


def test_configure_logging_emits_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        configure_logging("INFO", json_format=True)
        logging.getLogger("sidecar.test").info("hello %s", "world", extra={"batch": 3})
        record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert record["message"] == "hello world"
        assert record["batch"] == 3
        assert record["level"] == "info"
        configure_logging("INFO", json_format=False)
        logging.getLogger("sidecar.test").warning("plain")
        assert "WARNING sidecar.test [-] plain" in capsys.readouterr().err
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        logging.getLogger("uvicorn.access").disabled = False


def test_no_log_line_carries_url_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        for json_format in (True, False):
            configure_logging("INFO", json_format=json_format)
            log = logging.getLogger("any.library")
            log.info("connecting to %s", "http://admin:hunter2-pw@engine:9200/x")
            try:
                raise ConnectionError("refused by https://admin:hunter2-pw@engine:9200")
            except ConnectionError:
                log.exception("failed")
            err = capsys.readouterr().err
            assert "hunter2-pw" not in err
            assert "http://<redacted>@engine:9200/x" in err and "https://<redacted>@engine:9200" in err
            assert "ConnectionError" in err
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        logging.getLogger("uvicorn.access").disabled = False
