"""Secrets kept out of every message that leaves the process: error bodies, logs, metric labels.

Two kinds leak in practice: credentials in URLs (`http://user:pw@host`) and credentials that a
library quotes back in its own error text (an HTTP client refusing the header `Bearer <key>\\r\\n`
names the whole header). Every message built from a URL or from a third party's exception text
goes through `url` or `text`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "<redacted>"

# `scheme://userinfo@`: the userinfo is everything up to the last `@` before the host.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/\s?#@]*@")
_HEADER_SECRET_NAMES = ("authorization", "api-key", "apikey", "token", "secret", "password")
_SCHEMES = ("Bearer ", "ApiKey ", "Basic ", "Token ")


def url(value: str) -> str:
    """`value` with the user and password of any URL in it replaced."""
    return _USERINFO.sub(lambda m: m.group("scheme") + REDACTED + "@", value)


def text(message: str, secrets: Iterable[str | None] = ()) -> str:
    """`message` with URL credentials and each of `secrets` replaced (also without the blanks and
    control characters around it, the form a library quotes back)."""
    out = url(message)
    for secret in secrets:
        for form in _forms(secret):
            out = out.replace(form, REDACTED)
    return out


def _forms(secret: str | None) -> list[str]:
    if not secret:
        return []
    # The credential also without its scheme: the scheme alone is no secret (`Bearer <key>`).
    credentials = [secret] + [secret[len(s) :] for s in _SCHEMES if secret.startswith(s)]
    forms = {f for c in credentials for f in (c, c.strip(), repr(c)[1:-1], repr(c.strip())[1:-1])}
    return sorted((f for f in forms if len(f.strip()) >= 4), key=len, reverse=True)


def header_secrets(headers: dict[str, str] | None) -> list[str]:
    """The values of headers that carry credentials (`Authorization`, `api-key`, `x-api-key`, ...)."""
    if not headers:
        return []
    return [v for k, v in headers.items() if any(n in k.lower() for n in _HEADER_SECRET_NAMES)]
