"""A fault-injecting HTTP proxy between the worker and a real engine (asyncio, in the test process).

- `outage(refuse_s, hang_s)`: the engine "stops": connections are refused (the listening socket is
  closed, open keep-alive connections are dropped), then requests hang without an answer; then the
  proxy passes traffic again. The shared engine itself is never touched.
- `reject_first[doc_id] = n`: the next n bulk items for that id are answered with a 429
  `es_rejected_execution_exception` item and are *not* forwarded, so a worker that failed to retry
  would lose the document; the other items of the same bulk go to the engine.
- `acked`: every document id (or dead-letter id) the engine acknowledged, recorded before the answer
  reaches the worker, so a committed offset can be checked against it; `conflicted`: the ids the
  engine answered with a 409 (a version conflict).
- `hold()` / `release()`: bulk requests are held, neither forwarded nor answered, until released;
  then they reach the engine late, as a slow or paused writer's would (`held` counts them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx

from tests.integration.worker_harness import free_port

HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "accept-encoding"}
DROP_ANSWER = {"content-length", "transfer-encoding", "connection", "content-encoding", "keep-alive"}


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        self.mode = "pass"  # pass | refuse | hang
        self.acked: set[str] = set()
        self.reject_first: dict[str, int] = {}
        self.injected = 0
        self.hung = 0
        self.held = 0
        self.conflicted: set[str] = set()
        self._released = asyncio.Event()
        self._released.set()
        self._client = httpx.AsyncClient(base_url=self.upstream, timeout=120)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._passing = asyncio.Event()
        self._passing.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.close()

    async def close(self) -> None:
        self.mode = "pass"
        self._passing.set()
        await self._stop_listening()
        await self._client.aclose()

    async def outage(self, refuse_s: float, hang_s: float) -> None:
        self._passing.clear()
        self.mode = "refuse"
        await self._stop_listening()
        await asyncio.sleep(refuse_s)
        self.mode = "hang"
        await self.start()
        await asyncio.sleep(hang_s)
        self.mode = "pass"
        self._passing.set()

    def hold(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    # --- one connection ----------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                if self.mode == "refuse":  # a keep-alive connection opened before the outage
                    break
                if self.mode == "hang":
                    self.hung += 1
                    await self._passing.wait()
                    break  # the held request never gets an answer
                status, headers, body = await self._forward(*request)
                head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
                head += f"content-length: {len(body)}\r\n\r\n"
                writer.write(head.encode("latin-1") + body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _forward(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        send = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
        is_bulk = method in ("POST", "PUT") and target.split("?", 1)[0].endswith("/_bulk")
        if is_bulk and not self._released.is_set():
            self.held += 1
            await self._released.wait()
        injected: dict[int, dict[str, Any]] = {}
        sent: list[str] = []  # ids of the items forwarded, in order (answers may omit them: filter_path)
        if is_bulk:
            body, injected, sent = self._take_rejections(body)
        if is_bulk and not body.strip():
            answer: dict[str, Any] = {"took": 0, "errors": True, "items": []}
            status, answer_headers = (
                200,
                [("content-type", "application/json"), ("x-elastic-product", "Elasticsearch")],
            )
        else:
            response = await self._client.request(method, target, headers=send, content=body)
            status = response.status_code
            answer_headers = [(k, v) for k, v in response.headers.items() if k.lower() not in DROP_ANSWER]
            if not is_bulk or status != 200:
                return status, answer_headers, response.content
            answer = response.json()
        self._record_acks(answer, sent)
        if injected:
            items = list(answer.get("items", []))
            for position in sorted(injected):
                items.insert(position, injected[position])
            answer = {**answer, "errors": True, "items": items}
        return status, answer_headers, json.dumps(answer).encode()

    def _take_rejections(self, body: bytes) -> tuple[bytes, dict[int, dict[str, Any]], list[str]]:
        lines = [line for line in body.split(b"\n") if line.strip()]
        kept: list[bytes] = []
        sent: list[str] = []
        injected: dict[int, dict[str, Any]] = {}
        i = position = 0
        while i < len(lines):
            action = json.loads(lines[i])
            op, meta = next(iter(action.items()))
            width = 1 if op == "delete" else 2
            doc_id = str(meta.get("_id"))
            if self.reject_first.get(doc_id, 0) > 0:
                self.reject_first[doc_id] -= 1
                self.injected += 1
                injected[position] = {
                    op: {
                        "_index": meta.get("_index"),
                        "_id": doc_id,
                        "status": 429,
                        "error": {
                            "type": "es_rejected_execution_exception",
                            "reason": "rejected execution of bulk item [injected by the test proxy]",
                        },
                    }
                }
            else:
                kept += lines[i : i + width]
                sent.append(doc_id)
            i += width
            position += 1
        return (b"\n".join(kept) + b"\n") if kept else b"", injected, sent

    def _record_acks(self, answer: dict[str, Any], sent: list[str]) -> None:
        for item, sent_id in zip(answer.get("items", []), sent, strict=False):
            op, result = next(iter(item.items()))
            status = int(result.get("status", 0))
            doc_id = str(result.get("_id", sent_id))
            if 200 <= status < 300 or (status == 409 and op == "create"):
                self.acked.add(doc_id)
            if status == 409:
                self.conflicted.add(doc_id)


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, list[tuple[str, str]], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:] if line)]
    fields = {k.lower(): v for k, v in headers}
    if "chunked" in fields.get("transfer-encoding", "").lower():
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await reader.readexactly(int(fields.get("content-length", "0")))
    return method, target, headers, body
