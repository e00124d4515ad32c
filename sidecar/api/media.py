"""Content negotiation the way Elasticsearch does it.

Clients send `application/json` or `application/vnd.elasticsearch+json; compatible-with=N` in
`Accept` and `Content-Type`. We accept N in `SUPPORTED_MAJORS`, answer JSON bodies with the same
media type the client asked for, and refuse request bodies we cannot read with 406.
"""

from __future__ import annotations

import re

from sidecar.errors import SidecarError

SUPPORTED_MAJORS = (8, 9)
DEFAULT_MAJOR = 8

_VENDOR_RE = re.compile(r"^\s*application/vnd\.elasticsearch\+json\s*(?:;\s*(?P<params>.*))?$", re.IGNORECASE)
_COMPAT_RE = re.compile(r"compatible-with\s*=\s*\"?(?P<major>\d+)\"?", re.IGNORECASE)
_JSON_TYPES = frozenset({"application/json", "application/x-ndjson", "text/json"})


class MediaTypeError(SidecarError):
    """A vendor media type with a compatibility version this server cannot speak."""

    status = 400
    es_type = "media_type_header_exception"


def compat_major(header_value: str | None, header_name: str) -> int | None:
    """The major version a vendor media type asks for, None for any other media type."""
    if not header_value:
        return None
    match = _VENDOR_RE.match(header_value)
    if match is None:
        return None
    compat = _COMPAT_RE.search(match.group("params") or "")
    if compat is None:
        return None
    digits = compat.group("major")
    # Compared as text first: Python refuses to turn more than 4,300 digits into an int.
    major = int(digits) if len(digits.lstrip("0")) <= 3 else None
    if major not in SUPPORTED_MAJORS:
        shown = digits if len(digits) <= 20 else digits[:20] + "..."
        raise MediaTypeError(
            f"Invalid media-type value on headers [{header_name}]: compatible-with={shown} is not "
            f"supported, use one of {list(SUPPORTED_MAJORS)}"
        )
    return major


def is_json_body_type(content_type: str) -> bool:
    """Whether a request body with this Content-Type can be read as JSON."""
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime in _JSON_TYPES or mime.endswith("+json")


def response_media_type(major: int | None) -> str:
    """The Content-Type of JSON answers: the vendor type when the client asked for one."""
    if major is None:
        return "application/json"
    return f"application/vnd.elasticsearch+json;compatible-with={major}"
