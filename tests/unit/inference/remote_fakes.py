"""A local HTTP server that plays a remote provider: it records requests and answers from a script.

Each scripted answer is (status, json body, headers). Bodies reproduce the providers' documented
formats (OpenAI, Cohere, Hugging Face / TEI, Elasticsearch), including their error bodies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

Answer = tuple[int, Any, dict[str, str]]


@dataclass
class EventStream:
    """A scripted `text/event-stream` answer: each event is sent as `data: <json>` and flushed;
    `[DONE]` ends it (unless `done` is false: Gemini's streams just end) unless `break_after` cuts
    the connection after that many events."""

    events: list[Any]
    break_after: int | None = None
    done: bool = True


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes = b""


@dataclass
class FakeProvider:
    url: str
    requests: list[Recorded] = field(default_factory=list)
    script: list[Answer] = field(default_factory=list)
    default: Callable[[Recorded], Answer] | None = None


def _body(raw: bytes) -> Any:
    """JSON, or a form (`application/x-www-form-urlencoded`, as OAuth token requests are)."""
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return dict(parse_qsl(raw.decode()))


@contextmanager
def fake_provider(default: Callable[[Recorded], Answer] | None = None) -> Iterator[FakeProvider]:
    provider = FakeProvider(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", 0)))
            rec = Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, _body(raw), raw)
            provider.requests.append(rec)
            if provider.script:
                status, body, headers = provider.script.pop(0)
            else:
                assert provider.default is not None
                status, body, headers = provider.default(rec)
            if isinstance(body, EventStream):
                self._send_events(status, body, headers)
                return
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _send_events(self, status: int, stream: EventStream, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("content-type", "text/event-stream")
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()  # HTTP/1.0: the body ends when the connection closes
            for n, event in enumerate(stream.events):
                if stream.break_after is not None and n == stream.break_after:
                    self.wfile.write(b'data: {"choices": [{"del')  # cut mid-event
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
            if stream.done:
                self.wfile.write(b"data: [DONE]\n\n")

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    provider.default = default
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()


def tei_answer(rec: Recorded) -> Answer:
    """text-embeddings-inference: `/embed` -> `[[f, ...]]`, `/embed_sparse` ->
    `[[{"index", "value"}]]`, `/rerank` -> `[{"index", "score", "text"?}]` (best first)."""
    path = rec.path.split("?")[0]
    if path == "/embed":
        return 200, [[float(len(t)), 1.0, -1.0] for t in rec.body["inputs"]], {}
    if path == "/embed_sparse":
        rows = [
            [{"index": 100 + len(t), "value": 0.5}, {"index": 7, "value": 1.25}] for t in rec.body["inputs"]
        ]
        return 200, rows, {}
    if path == "/rerank":
        texts, query = rec.body["texts"], rec.body["query"]
        scored = [
            {"index": i, "score": 1.0 / (1 + abs(len(t) - len(query)))}
            | ({"text": t} if rec.body.get("return_text") else {})
            for i, t in enumerate(texts)
        ]
        return 200, sorted(scored, key=lambda r: -r["score"]), {}
    return 404, {"error": f"no route {path}", "error_type": "Not Found"}, {}


def sigv4_valid(rec: Recorded, secret_key: str, region: str, service: str) -> bool:
    """Whether a POST carries a valid AWS Signature Version 4 for these credentials, checked as AWS's
    documentation describes it (an implementation independent of the one under test)."""
    auth = rec.headers.get("authorization", "")
    algorithm, _, fields = auth.partition(" ")
    parts = dict(p.strip().split("=", 1) for p in fields.split(",")) if fields else {}
    if algorithm != "AWS4-HMAC-SHA256" or not {"Credential", "SignedHeaders", "Signature"} <= parts.keys():
        return False
    _key_id, day, cred_region, cred_service, terminal = parts["Credential"].split("/")
    if (cred_region, cred_service, terminal) != (region, service, "aws4_request"):
        return False
    url = urlsplit(rec.path)
    # Every service but S3 encodes each (already encoded) path segment once more.
    path = "/".join(quote(segment, safe="-_.~") for segment in url.path.split("/"))
    query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(parse_qsl(url.query, keep_blank_values=True))
    )
    signed = parts["SignedHeaders"].split(";")
    headers = "".join(f"{name}:{' '.join(rec.headers.get(name, '').split())}\n" for name in signed)
    payload = hashlib.sha256(rec.raw).hexdigest()
    canonical = "\n".join(["POST", path, query, headers, parts["SignedHeaders"], payload])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", rec.headers["x-amz-date"], scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{secret_key}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["Signature"])
