"""Settings checks shared by the provider runtimes, with Elasticsearch's messages.

Elasticsearch collects every problem of a request into one ValidationException and reports them
as `Validation Failed: 1: ...;2: ...;`; `Errors` does the same.
"""

from __future__ import annotations

from typing import Any

from sidecar.errors import SettingsValidationError

SIMILARITIES = ("cosine", "dot_product", "l2_norm")


class Errors:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)

    def raise_any(self) -> None:
        if self.messages:
            body = "".join(f"{i}: {m};" for i, m in enumerate(self.messages, 1))
            raise SettingsValidationError(f"Validation Failed: {body}")

    def positive_int(self, settings: dict[str, Any], key: str, scope: str = "service_settings") -> None:
        value = settings.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            self.add(f"[{scope}] Invalid value [{value}]. [{key}] must be a positive integer")

    def one_of(
        self, settings: dict[str, Any], key: str, allowed: tuple[str, ...], scope: str = "service_settings"
    ) -> None:
        value = settings.get(key)
        if value is not None and str(value).lower() not in allowed:
            self.add(
                f"[{scope}] Invalid value [{value}] received. [{key}] must be one of [{', '.join(allowed)}]"
            )
