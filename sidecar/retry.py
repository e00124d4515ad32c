"""The one retry policy: every retry in the project (engine bulks, the target check, dead-letter
writes, the worker's and the backfill's waits on inference and on the engine at start, remote
inference providers, the endpoint registry) goes through `retry_async` / `retry_sync`, built on
tenacity, and waits by `Backoff.delay`.

Exponential with equal jitter (half fixed, half random): never a zero wait, so a retry always
backs off, yet many callers hitting the same limit spread out. A server's `Retry-After` (seconds),
carried by the exception as `retry_after`, wins when it is given, bounded by the same ceiling.
Per-item bulk retries (`sidecar.sinks.base`) keep their own bookkeeping on top, with the same
`Backoff.delay`.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    stop_never,
)
from tenacity.stop import stop_base

T = TypeVar("T")

# What to retry: exception types, or a predicate that sees the exception.
RetryOn = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
# Told before each wait: the number of the retry about to happen (1 first) and why.
OnRetry = Callable[[int, BaseException], None]


@dataclass(frozen=True)
class Backoff:
    initial_s: float
    max_s: float

    @classmethod
    def from_ms(cls, initial_ms: float, max_ms: float) -> Backoff:
        return cls(initial_ms / 1000, max_ms / 1000)

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry number `attempt` (1 for the first retry)."""
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.max_s)
            except ValueError:
                pass  # an HTTP date: fall back to our own schedule
        # The exponent is capped: an outage of thousands of retries must not overflow the float.
        ceiling = min(self.max_s, self.initial_s * (2 ** min(max(attempt - 1, 0), 60)))
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not security


class TryAgain(Exception):
    """Raised by an attempt whose answer asks for another one (letters refused, a wrong target):
    `reason` for logs and health, `retry_after` when the other side named a wait."""

    def __init__(self, reason: str, retry_after: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _predicate(retry_on: RetryOn) -> Callable[[BaseException], bool]:
    if isinstance(retry_on, type | tuple):
        types = retry_on
        return lambda exc: isinstance(exc, types)
    return retry_on


def _policy(
    backoff: Backoff,
    retry_on: RetryOn,
    attempts: int | None,
    within_s: float | None,
    before_wait: Callable[[RetryCallState], None],
) -> dict[str, object]:
    def wait(state: RetryCallState) -> float:
        return backoff.delay(state.attempt_number, getattr(_exception(state), "retry_after", None))

    stops: list[stop_base] = []
    if attempts is not None:
        stops.append(stop_after_attempt(attempts))
    if within_s is not None:
        stops.append(stop_after_delay(within_s))
    return {
        "wait": wait,
        "retry": retry_if_exception(_predicate(retry_on)),
        "stop": stop_any(*stops) if stops else stop_never,
        "before_sleep": before_wait,
        "reraise": True,  # the caller sees the last attempt's own exception, not a RetryError
    }


def _exception(state: RetryCallState) -> BaseException:
    exc = state.outcome.exception() if state.outcome is not None else None
    assert exc is not None  # noqa: S101 - tenacity only waits after a failed attempt
    return exc


async def retry_async(
    call: Callable[[], Awaitable[T]],
    backoff: Backoff,
    *,
    retry_on: RetryOn,
    attempts: int | None = None,
    within_s: float | None = None,
    on_retry: OnRetry | None = None,
    waiting: Callable[[bool], None] | None = None,
) -> T:
    """`await call()` until it returns, or raises what `retry_on` does not cover, or `attempts`
    (in all) or `within_s` run out (then its last exception). `waiting(True)` is told at the
    first retry and `waiting(False)` once the call is over, so a caller can hold a pause across
    the whole episode instead of flapping between attempts."""
    retried = False

    def before_wait(state: RetryCallState) -> None:
        nonlocal retried
        if on_retry is not None:  # first the why (health reads it), then the pause
            on_retry(state.attempt_number, _exception(state))
        if not retried and waiting is not None:
            waiting(True)
        retried = True

    async def attempt() -> T:  # tenacity tells async from sync by the function: a lambda looks sync
        return await call()

    try:
        return await AsyncRetrying(**_policy(backoff, retry_on, attempts, within_s, before_wait))(attempt)  # type: ignore[arg-type]
    finally:
        if retried and waiting is not None:
            waiting(False)


def retry_sync(
    call: Callable[[], T],
    backoff: Backoff,
    *,
    retry_on: RetryOn,
    attempts: int | None = None,
    within_s: float | None = None,
    on_retry: OnRetry | None = None,
) -> T:
    """`retry_async` for blocking code (the endpoint registry's requests)."""

    def before_wait(state: RetryCallState) -> None:
        if on_retry is not None:
            on_retry(state.attempt_number, _exception(state))

    return Retrying(**_policy(backoff, retry_on, attempts, within_s, before_wait))(call)  # type: ignore[arg-type]
