"""Streamed completions: server-sent events in Elasticsearch's format, errors as `event: error`.

The packaged models offer no completion task, so these use the in-test service (which also lets a
stream fail half way).
"""

from __future__ import annotations

import json

import httpx
from syrupy.assertion import SnapshotAssertion

from sidecar.errors import OverloadedError
from tests.unit.api.conftest import COMPLETION_ID, ClientFactory
from tests.unit.api.fake_service import FakeInferenceService


def _events(text: str) -> list[tuple[str, str]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], fields["data"]))
    return events


async def test_stream_sends_deltas_then_done(
    fake_client: httpx.AsyncClient, snapshot: SnapshotAssertion
) -> None:
    for path in (f"/_inference/completion/{COMPLETION_ID}/_stream", f"/_inference/{COMPLETION_ID}/_stream"):
        response = await fake_client.post(path, json={"input": "the sky above"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-elastic-product"] == "Elasticsearch"
        events = _events(response.text)
        assert events[-1] == ("message", "[DONE]")
        deltas = [json.loads(data)["completion"][0]["delta"] for _, data in events[:-1]]
        assert "".join(deltas) == "the sky above "
        assert response.text == snapshot


async def test_error_mid_stream_is_an_error_event(
    open_client: ClientFactory, snapshot: SnapshotAssertion
) -> None:
    service = FakeInferenceService()
    service.stream_fail_after = 2
    async with open_client(service=service) as client:
        response = await client.post(
            f"/_inference/completion/{COMPLETION_ID}/_stream", json={"input": "a b c d"}
        )
    assert response.status_code == 200
    events = _events(response.text)
    assert [name for name, _ in events] == ["message", "message", "error"]
    assert json.loads(events[-1][1]) == snapshot


async def test_error_before_the_stream_keeps_its_status(
    fake_client: httpx.AsyncClient, fake: FakeInferenceService
) -> None:
    fake.fail_with = OverloadedError("queue full")
    response = await fake_client.post(f"/_inference/completion/{COMPLETION_ID}/_stream", json={"input": "x"})
    assert response.status_code == 429
    assert response.json()["error"]["type"] == "es_rejected_execution_exception"
    fake.fail_with = None
    missing = await fake_client.post("/_inference/completion/nope/_stream", json={"input": "x"})
    assert missing.status_code == 404


async def test_non_stream_completion(fake_client: httpx.AsyncClient) -> None:
    response = await fake_client.post(f"/_inference/completion/{COMPLETION_ID}", json={"input": ["hi", "yo"]})
    assert response.json() == {"completion": [{"result": "HI"}, {"result": "YO"}]}
