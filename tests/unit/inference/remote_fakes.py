"""A local HTTP server that plays a remote provider: it records requests and answers from a script.

Each scripted answer is (status, json body, headers). Bodies reproduce the providers' documented
formats (OpenAI, Cohere, Hugging Face / TEI, Elasticsearch), including their error bodies.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, Any, dict[str, str]]


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeProvider:
    url: str
    requests: list[Recorded] = field(default_factory=list)
    script: list[Answer] = field(default_factory=list)
    default: Callable[[Recorded], Answer] | None = None


@contextmanager
def fake_provider(default: Callable[[Recorded], Answer] | None = None) -> Iterator[FakeProvider]:
    provider = FakeProvider(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", 0)))
            rec = Recorded(
                self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw or b"null")
            )
            provider.requests.append(rec)
            if provider.script:
                status, body, headers = provider.script.pop(0)
            else:
                assert provider.default is not None
                status, body, headers = provider.default(rec)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

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
