"""Elasticsearch date math in index names (`<logs-{now/d}>`, `<logs-{now/M{yyyy.MM}|+01:00}>`).

Resolved here rather than by the engine so the bulk request, the `skip_if_unchanged` look-up and
`sidecar setup` agree on one concrete index, on Elasticsearch, OpenSearch and the ES-wire emulator
alike. Supported: `now`, `+N`/`-N` with units y M w d h H m s, rounding `/unit`, a Java-style
format built from yyyy yy MM dd HH mm ss (default `yyyy.MM.dd`) and a time zone (`+01:00`, `UTC`,
or an IANA name).
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_EXPR = re.compile(r"^now((?:[+-]\d+[yMwdhHms])*)(?:/([yMwdhHms]))?(?:\{([^}|]*)(?:\|([^}]*))?\})?$")
_STEP = re.compile(r"([+-]\d+)([yMwdhHms])")
_FORMAT_TOKENS = (
    ("yyyy", "%Y"),
    ("uuuu", "%Y"),
    ("yy", "%y"),
    ("MM", "%m"),
    ("dd", "%d"),
    ("HH", "%H"),
    ("mm", "%M"),
    ("ss", "%S"),
)
DEFAULT_FORMAT = "yyyy.MM.dd"


class DateMathError(ValueError):
    """An index name's date math cannot be resolved."""


def is_date_math(index: str) -> bool:
    return index.startswith("<") and index.endswith(">")


def resolve_index(index: str, now: datetime | None = None) -> str:
    """The concrete index for `index` at `now` (UTC by default); plain names are returned as is."""
    if not is_date_math(index):
        return index
    body = index[1:-1]
    now = now or datetime.now(UTC)
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            out.append(body[i + 1])
            i += 2
        elif char == "{":
            end = _closing_brace(body, i)
            out.append(_evaluate(body[i + 1 : end], now))
            i = end + 1
        elif char == "}":
            raise DateMathError(f"invalid date math index [{index}]: unbalanced [}}]")
        else:
            out.append(char)
            i += 1
    return "".join(out)


def static_prefix(index: str) -> str:
    """The part before the first date math expression (for index template patterns)."""
    if not is_date_math(index):
        return index
    body = index[1:-1]
    return body.split("{", 1)[0].replace("\\", "")


def _closing_brace(body: str, start: int) -> int:
    depth = 0
    for i in range(start, len(body)):
        if body[i] == "{":
            depth += 1
        elif body[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise DateMathError(f"invalid date math expression [{body[start:]}]: missing [}}]")


def _evaluate(expr: str, now: datetime) -> str:
    match = _EXPR.match(expr)
    if match is None:
        raise DateMathError(f"invalid date math expression [{expr}]")
    steps, rounding, fmt, zone = match.groups()
    moment = now.astimezone(_zone(zone) if zone else UTC)
    for amount, unit in _STEP.findall(steps or ""):
        moment = _shift(moment, int(amount), unit)
    if rounding:
        moment = _round_down(moment, rounding)
    return moment.strftime(_java_format(fmt if fmt else DEFAULT_FORMAT))


def _zone(name: str) -> tzinfo:
    offset = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", name)
    if offset:
        sign = 1 if offset.group(1) == "+" else -1
        return timezone(sign * timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3))))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DateMathError(f"unknown time zone [{name}]") from exc


def _shift(moment: datetime, amount: int, unit: str) -> datetime:
    if unit in "yM":
        months = moment.month - 1 + amount * (12 if unit == "y" else 1)
        year, month = moment.year + months // 12, months % 12 + 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        return moment.replace(year=year, month=month, day=day)
    seconds = {"w": 604800, "d": 86400, "h": 3600, "H": 3600, "m": 60, "s": 1}[unit]
    return moment + timedelta(seconds=amount * seconds)


def _round_down(moment: datetime, unit: str) -> datetime:
    if unit == "y":
        return moment.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "M":
        return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "w":
        start = moment - timedelta(days=moment.weekday())
        return start.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "d":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit in "hH":
        return moment.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return moment.replace(second=0, microsecond=0)
    return moment.replace(microsecond=0)


def _java_format(fmt: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(fmt):
        for token, directive in _FORMAT_TOKENS:
            if fmt.startswith(token, i):
                out.append(directive)
                i += len(token)
                break
        else:
            char = fmt[i]
            if char.isalpha():
                raise DateMathError(f"unsupported date format [{fmt}]: use yyyy, yy, MM, dd, HH, mm, ss")
            out.append("%%" if char == "%" else char)
            i += 1
    return "".join(out)
