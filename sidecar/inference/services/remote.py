"""What every remote inference service shares: one httpx client, timeouts, retries with jittered
exponential backoff on 429/5xx/transport errors (honouring `Retry-After`), a per-endpoint rate
limit, and Elasticsearch-style error messages that carry the provider's own message."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from sidecar import redact
from sidecar.errors import RemoteServiceError, SettingsValidationError
from sidecar.observability import metrics
from sidecar.retry import Backoff, retry_async


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    timeout_s: float = 30.0

    def backoff(self) -> Backoff:
        return Backoff(self.base_delay_s, self.max_delay_s)


class RateLimiter:
    """Spaces calls evenly at `per_minute`; callers queue on the limiter instead of bursting."""

    def __init__(self, per_minute: float | None) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + self.interval
        if wait > 0:
            await asyncio.sleep(wait)


def rate_limit_from(settings: dict[str, Any], default_per_minute: float) -> float:
    raw = settings.get("rate_limit")
    if raw is None:
        return default_per_minute
    if not isinstance(raw, dict) or set(raw) - {"requests_per_minute"}:
        raise SettingsValidationError("[rate_limit] must be an object with [requests_per_minute]")
    value = raw.get("requests_per_minute", default_per_minute)
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise SettingsValidationError("[rate_limit.requests_per_minute] must be a positive number")
    return float(value)


def provider_message(response: httpx.Response) -> str:
    """The human part of a provider's error body (OpenAI, Cohere, Hugging Face, Elasticsearch)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # OpenAI {"error":{"message"}}, Elasticsearch {"error":{"reason"}}
            return str(error.get("message") or error.get("reason") or error)
        if isinstance(error, str):  # Hugging Face / TEI {"error": "...", "error_type": "..."}
            return error
        if "message" in body:  # Cohere {"message": "..."}
            return str(body["message"])
        if "detail" in body:  # Voyage AI, Jina AI, RFC 9457 problem details {"detail": "..."}
            return str(body["detail"])
    return str(body)[:500]


class RemoteCaller:
    """POSTs JSON for one endpoint with retries and its rate limit."""

    def __init__(
        self,
        service: str,
        inference_id: str,
        *,
        requests_per_minute: float,
        policy: RetryPolicy | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.service = service
        self.inference_id = inference_id
        self.policy = policy or RetryPolicy()
        self.limiter = RateLimiter(requests_per_minute)
        self._client = client or httpx.AsyncClient(timeout=self.policy.timeout_s)
        self._owns_client = client is None

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def get(self, url: str, headers: dict[str, str] | None = None) -> Any:
        """GET and parse the JSON answer, with the same retries as `post`."""
        return self._json(await self._send(url, None, headers, stream=False, method="GET"))

    async def post(
        self,
        url: str,
        body: Any,
        headers: dict[str, str] | None = None,
        *,
        content: str | None = None,
        auth: httpx.Auth | None = None,
    ) -> Any:
        """POST `body` as JSON, or `content` as it is (a rendered template), and parse the JSON answer.
        `auth` signs each attempt anew (AWS Signature V4 dates expire)."""
        return self._json(await self._send(url, body, headers, stream=False, content=content, auth=auth))

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise RemoteServiceError(
                self._failure(f"answered with a body that is not JSON: {response.text[:200]!r}")
            ) from exc

    async def stream_events(
        self,
        url: str,
        body: Any,
        headers: dict[str, str] | None = None,
        *,
        last: Callable[[Any], bool] | None = None,
    ) -> AsyncIterator[Any]:
        """POST, then yield each server-sent event's JSON `data` until `[DONE]` (or an event `last`
        accepts: Anthropic ends with `message_stop`). An event counts once its blank line arrives (as
        the SSE spec says); a stream that ends before its end event was cut off.
        Retries happen only before the first byte: a half-delivered stream cannot be replayed."""
        response = await self._send(url, body, headers, stream=True)
        data: list[str] = []
        try:
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    data.append(line.removeprefix("data:").strip())
                    continue
                if line or not data:
                    continue  # event names, ids, comments; blank lines between events
                payload, data = "\n".join(data), []
                if payload == "[DONE]":
                    return
                try:
                    event = json.loads(payload)
                except ValueError as exc:
                    raise RemoteServiceError(
                        self._failure(f"sent an event that is not JSON: {payload[:200]!r}")
                    ) from exc
                yield event
                if last is not None and last(event):
                    return
            raise RemoteServiceError(
                self._failure("the event stream ended before [DONE]"), status=502, retriable=True
            )
        except httpx.TransportError as exc:
            raise RemoteServiceError(
                self._failure(f"stream broke off: {exc}"), status=502, retriable=True
            ) from exc
        finally:
            await response.aclose()

    async def _send(
        self,
        url: str,
        body: Any,
        headers: dict[str, str] | None,
        *,
        stream: bool,
        content: str | None = None,
        auth: httpx.Auth | None = None,
        method: str = "POST",
    ) -> httpx.Response:
        """A successful response (body unread when streaming), after retries on 429/5xx/transport."""

        async def attempt() -> httpx.Response:
            await self.limiter.acquire()
            # Errors are raised outside the `except`: the client's exception (whose text may quote
            # a credential header, `Bearer <key>` with a stray CR/LF) must not ride along as context.
            failed: RemoteServiceError | None = None
            try:
                request = (
                    self._client.build_request(method, url, json=body, headers=headers)
                    if content is None
                    else self._client.build_request(method, url, content=content.encode(), headers=headers)
                )
                response = await self._client.send(request, stream=stream, auth=auth)
            except httpx.TimeoutException as exc:
                failed = RemoteServiceError(self._failure(f"timed out: {exc}"), status=504, retriable=True)
            except (httpx.TransportError, httpx.InvalidURL, UnicodeEncodeError) as exc:
                detail = redact.text(str(exc), redact.header_secrets(headers))
                failed = RemoteServiceError(
                    self._failure(f"could not connect: {detail}"), status=502, retriable=True
                )
            if failed is not None:
                raise failed
            code = response.status_code
            if code < 400:
                return response
            if stream:
                await response.aread()
                await response.aclose()
            raise RemoteServiceError(
                f"Received an unsuccessful status code for request from inference entity id "
                f"[{self.inference_id}] status [{code}]. Error message: [{provider_message(response)}]",
                status=code if code < 500 else 502,
                retriable=code == 429 or code >= 500,
                retry_after=response.headers.get("retry-after"),
            )

        return await retry_async(
            attempt,
            self.policy.backoff(),
            retry_on=lambda exc: isinstance(exc, RemoteServiceError) and exc.retriable,
            attempts=self.policy.max_retries + 1,
            on_retry=lambda _n, _exc: metrics.INFERENCE_REMOTE_RETRIES.labels(self.service).inc(),
        )

    def _failure(self, what: str) -> str:
        return (
            f"Failed to call the [{self.service}] service for inference entity id "
            f"[{self.inference_id}]: {what}"
        )


def parse_failure(service: str, inference_id: str, what: str) -> RemoteServiceError:
    return RemoteServiceError(
        f"Failed to parse the [{service}] response for inference entity id [{inference_id}]: {what}"
    )
