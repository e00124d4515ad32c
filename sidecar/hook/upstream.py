"""The engine the hook forwards writes to: one pooled HTTP client, the engine's own credentials.

Requests go out as `application/json` / `application/x-ndjson` whatever compatibility media type the
client used, because OpenSearch does not know Elasticsearch's versioned types. Answers come back
verbatim (status, body, `Warning` headers). Without configured credentials, the client's own
`Authorization` header is passed on when the sidecar does not check API keys itself.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from sidecar import redact
from sidecar.errors import UpstreamUnavailableError
from sidecar.pipelines.schema import SinkAuth


@dataclass(frozen=True)
class UpstreamAnswer:
    status: int
    body: bytes
    content_type: str
    warnings: list[str]


def engine_path(*segments: str) -> str:
    """A path of URL-encoded segments (ids may hold `/`, date math holds `<{/}>`).

    `.` and `..` are encoded too: as they are, the HTTP client would resolve them as dot-segments
    (`/x/_doc/..` becomes `/x`) and the document body would reach another API. The engines decode
    `%2E%2E` back to the id `..`.
    """
    return "/" + "/".join(_segment(s) for s in segments)


def _segment(value: str) -> str:
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe="")


def auth_header(auth: SinkAuth | None) -> str | None:
    if auth is None:
        return None
    if auth.api_key is not None:
        return f"ApiKey {auth.api_key.get_secret_value()}"
    if auth.username is not None and auth.password is not None:
        raw = f"{auth.username}:{auth.password.get_secret_value()}".encode()
        return "Basic " + base64.b64encode(raw).decode()
    return None


class Upstream:
    def __init__(
        self,
        url: str,
        *,
        auth: SinkAuth | None = None,
        timeout_s: float = 120.0,
        pass_client_auth: bool = False,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.authorization = auth_header(auth)
        self.pass_client_auth = pass_client_auth and self.authorization is None
        verify: bool | str = True
        if auth is not None:
            verify = auth.ca_file or auth.verify_certs
        self.client = client or httpx.AsyncClient(
            timeout=timeout_s, verify=verify, limits=httpx.Limits(max_connections=64)
        )

    async def send(
        self,
        method: str,
        path: str,
        params: Sequence[tuple[str, str]],
        body: bytes | AsyncIterator[bytes],
        content_type: str,
        *,
        client_authorization: str | None = None,
        content_length: int | None = None,
    ) -> UpstreamAnswer:
        headers = {"content-type": content_type, "accept": "application/json"}
        authorization = self.authorization or (client_authorization if self.pass_client_auth else None)
        if authorization is not None:
            headers["authorization"] = authorization
        if content_length is not None and not isinstance(body, bytes):
            headers["content-length"] = str(content_length)
        try:
            response = await self.client.request(
                method, self.url + path, params=list(params), content=body, headers=headers
            )
        except (httpx.HTTPError, UnicodeEncodeError) as exc:
            # Not chained: the client's error text can quote a credential header or the URL's password.
            detail = redact.text(f"{type(exc).__name__}: {exc}", [authorization])
            raise UpstreamUnavailableError(
                f"the engine at [{redact.url(self.url)}] did not answer: {detail}"
            ) from None
        return UpstreamAnswer(
            response.status_code,
            response.content,
            response.headers.get("content-type", "application/json"),
            response.headers.get_list("warning"),
        )

    async def close(self) -> None:
        await self.client.aclose()
