"""What the ingest-hook and backfill integration tests share: SciFact documents, engine helpers, and a
real sidecar API (real inference service, in-process uvicorn on a free port) that counts every text
it encodes, so backfill subprocesses using it as their remote inference can be audited exactly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from sidecar.api.app import create_app
from sidecar.inference.types import InferenceOutput
from sidecar.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
SCIFACT = ROOT / "datasets" / "scifact" / "corpus.jsonl"
SIDECAR_CLI = [sys.executable, "-m", "sidecar.cli"]


def scifact(count: int | None = None) -> list[dict[str, Any]]:
    docs = [json.loads(line) for line in SCIFACT.read_text(encoding="utf-8").splitlines()]
    return docs[:count] if count is not None else docs


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class CountingService:
    """The real inference service, counting the texts it encodes (read from the test's thread)."""

    def __init__(self, service: Any) -> None:
        self._service = service
        self.texts = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)

    async def infer(self, inference_id: str, inputs: list[str], **kwargs: Any) -> InferenceOutput:
        output: InferenceOutput = await self._service.infer(inference_id, inputs, **kwargs)
        with self._lock:
            self.texts += len(inputs)
        return output


def sidecar_settings(tmp: Path, **overrides: Any) -> Settings:
    return load_settings(
        registry_path=tmp / "endpoints.sqlite3",
        preload_endpoints=[".splade-tiny"],
        log_json=False,
        **overrides,
    )


@contextmanager
def sidecar_server(settings: Settings, service: Any = None) -> Iterator[str]:
    """The sidecar API on a free loopback port, in a thread with its own event loop; yields its URL."""
    from sidecar.inference.service import InferenceService

    service = service if service is not None else CountingService(InferenceService.from_settings(settings))
    app = create_app(settings, service=service)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="sidecar-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 180
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the sidecar server did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)


class EngineClient:
    """A few synchronous calls against OpenSearch or the Elasticsearch-wire server."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=120, headers={"content-type": "application/json"})

    def create(self, index: str, body: dict[str, Any]) -> None:
        answer = self.http.put(f"/{index}", json=body)
        assert answer.status_code == 200, answer.text

    def bulk(self, lines: bytes, params: str = "refresh=true") -> dict[str, Any]:
        answer = self.http.post(
            f"/_bulk?{params}", content=lines, headers={"content-type": "application/x-ndjson"}
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def index_docs(self, index: str, docs: list[dict[str, Any]], chunk: int = 1000) -> None:
        for i in range(0, len(docs), chunk):
            lines = [
                line
                for doc in docs[i : i + chunk]
                for line in (
                    {"index": {"_index": index, "_id": doc["_id"]}},
                    {k: v for k, v in doc.items() if k != "_id"},
                )
            ]
            assert not self.bulk(ndjson(lines))["errors"]

    def all_docs(self, index: str, query: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """id -> hit (with `_version`), every document of a small index."""
        self.http.post(f"/{index}/_refresh")
        body = {"size": 10_000, "version": True, "query": query or {"match_all": {}}}
        answer = self.http.post(f"/{index}/_search", json=body)
        assert answer.status_code == 200, answer.text
        return {hit["_id"]: hit for hit in answer.json()["hits"]["hits"]}

    def count(self, index: str, query: dict[str, Any] | None = None) -> int:
        self.http.post(f"/{index}/_refresh")
        answer = self.http.post(f"/{index}/_count", json={"query": query or {"match_all": {}}})
        assert answer.status_code == 200, answer.text
        return int(answer.json()["count"])

    def delete(self, *indices: str) -> None:
        for index in indices:
            self.http.delete(f"/{index}")

    def close(self) -> None:
        self.http.close()


def ndjson(objects: list[Any]) -> bytes:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects).encode()


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class CliProcess:
    """`sidecar <args>` as a real subprocess (so SIGKILL is real), output kept in a log file."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self._handle = log.open("wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [*SIDECAR_CLI, *args], stdout=self._handle, stderr=subprocess.STDOUT, cwd=ROOT, env=env
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self._handle.close()

    def wait(self, timeout_s: float) -> int:
        try:
            code = self.process.wait(timeout=timeout_s)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._handle.close()
        return code

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")
