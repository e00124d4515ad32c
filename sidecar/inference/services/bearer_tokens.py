"""Bearer tokens from an OAuth token endpoint: a form POST answered by `{"access_token",
"expires_in"}`, the token reused until a minute before it expires.

Used for IBM Cloud IAM (watsonx.ai's API-key grant) and OAuth 2.0 client credentials (Azure
OpenAI through Microsoft Entra ID, OpenAI's OAuth2 settings).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from sidecar.errors import RemoteServiceError
from sidecar.inference.services.validation import Errors

MARGIN_S = 60.0  # a token is renewed this long before it expires


class BearerTokens:
    def __init__(self, url: str, form: dict[str, str], inference_id: str, timeout_s: float) -> None:
        self.url = url
        self.form = form
        self.inference_id = inference_id
        self.timeout_s = timeout_s
        self._token: tuple[str, float] | None = None  # (token, monotonic expiry)
        self._lock = asyncio.Lock()

    async def header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token()}"}

    async def token(self) -> str:
        async with self._lock:
            if self._token is None or time.monotonic() >= self._token[1]:
                self._token = await self._fetch()
            return self._token[0]

    def _failure(self, what: str) -> str:
        return f"Failed to generate a Bearer Token for inference entity id [{self.inference_id}]: {what}"

    async def _fetch(self) -> tuple[str, float]:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(self.url, data=self.form, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise RemoteServiceError(
                self._failure(f"could not connect: {exc}"), status=502, retriable=True
            ) from exc
        if response.status_code >= 400:
            raise RemoteServiceError(
                self._failure(f"status [{response.status_code}]. Error message: [{_reason(response)}]"),
                status=response.status_code if response.status_code < 500 else 502,
                retriable=response.status_code >= 500 or response.status_code == 429,
            )
        try:
            body = response.json()
            token, lifetime = str(body["access_token"]), float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as exc:
            raise RemoteServiceError(
                self._failure(f"the token answer has no access_token: {exc}"), status=502
            ) from exc
        return token, time.monotonic() + max(lifetime - MARGIN_S, 0.0)


def _reason(response: httpx.Response) -> str:
    """An OAuth error answer's description (`error_description`, else `error`), else the status text."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(body, dict):
        for key in ("error_description", "errorMessage", "error"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return response.reason_phrase


def client_credentials(settings: dict[str, Any], secrets: dict[str, Any]) -> dict[str, str]:
    """The OAuth 2.0 client-credentials form (OpenAI's and Azure OpenAI's OAuth2 settings)."""
    return {
        "grant_type": "client_credentials",
        "client_id": str(settings["client_id"]),
        "client_secret": str(secrets["client_secret"]),
        "scope": " ".join(settings["scopes"]),
    }


def check_scopes(service_settings: dict[str, Any], errors: Errors) -> None:
    scopes = service_settings.get("scopes")
    if scopes is not None and (
        not isinstance(scopes, list) or not scopes or not all(isinstance(x, str) and x for x in scopes)
    ):
        errors.add("[service_settings] [scopes] must be a non-empty list of strings")
