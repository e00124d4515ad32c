"""Optional API-key authentication, accepting the headers Elasticsearch clients and services send.

- `Authorization: ApiKey <base64(id:key)>` (the official clients' `api_key=(id, key)`), or
  `ApiKey <credential>` with the credential as configured (`api_key="..."`),
- `Authorization: Bearer <key>` (Elasticsearch's `hugging_face` and `custom` services).

A key may be configured and presented as `id:key`, `key`, or base64 of `id:key`; a credential
matches when one of its readings equals one of a configured key's (compared in constant time). Keys come
from `SIDECAR_API_KEYS` and/or one per line in `SIDECAR_API_KEYS_FILE`; none configured turns
authentication off. Keys are never logged or echoed back.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterable
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from sidecar.errors import AuthenticationError
from sidecar.settings import Settings

# Probes and scrapers must work without credentials.
PUBLIC_PATHS = frozenset({"/_sidecar/health/live", "/_sidecar/health/ready", "/metrics"})


def load_keys(settings: Settings) -> list[bytes]:
    keys = [k.get_secret_value().strip() for k in settings.api_keys]
    if settings.api_keys_file is not None:
        path = Path(settings.api_keys_file)
        lines = path.read_text(encoding="utf-8").splitlines()
        keys.extend(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))
    return [k.encode() for k in keys if k]


def _readings(credential: str) -> set[bytes]:
    """Every way a credential may be written: as is, base64-decoded, and the key part of `id:key`."""
    forms = {credential}
    try:
        forms.add(base64.b64decode(credential, validate=True).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    key_parts = {form.split(":", 1)[1] for form in forms if ":" in form}
    return {form.encode() for form in forms | key_parts if form}


class Authenticator:
    def __init__(self, keys: Iterable[bytes]) -> None:
        # Each configured key in all its readings, so `id:key`, `key` and base64 forms all match.
        self._keys = sorted({reading for key in keys for reading in _readings(key.decode())})

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def check(self, authorization: str | None, path: str) -> None:
        """Raise `AuthenticationError` unless the header carries an accepted key."""
        if authorization is None:
            raise AuthenticationError(f"missing authentication credentials for REST request [{path}]")
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() in ("apikey", "bearer") and credential:
            readings = _readings(credential)
            # Compare against every key, without stopping early, so timing says nothing.
            matched = False
            for key in self._keys:
                for reading in readings:
                    matched |= hmac.compare_digest(key, reading)
            if matched:
                return
        raise AuthenticationError(
            f"unable to authenticate with provided credentials and anonymous access is not allowed "
            f"for this request [{path}]"
        )


class AuthMiddleware:
    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.authenticator.enabled and scope["path"] not in PUBLIC_PATHS:
            header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
            self.authenticator.check(header, scope["path"])
        await self.app(scope, receive, send)
