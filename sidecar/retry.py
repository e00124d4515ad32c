"""The one backoff formula for every retry in the project: engine bulks and their items, dead-letter
writes, the worker's and the backfill's waits on inference, and remote inference providers.

Exponential with equal jitter (half fixed, half random): never a zero wait, so a retry always
backs off, yet many callers hitting the same limit spread out. A server's `Retry-After` (seconds)
wins when it is given, bounded by the same ceiling.
"""

from __future__ import annotations

import random


def backoff_delay(attempt: int, initial_s: float, max_s: float, retry_after: str | None = None) -> float:
    """Seconds to wait before retry number `attempt` (1 for the first retry)."""
    if retry_after:
        try:
            return min(max(float(retry_after), 0.0), max_s)
        except ValueError:
            pass  # an HTTP date: fall back to our own schedule
    # The exponent is capped: an outage of thousands of retries must not overflow the float.
    ceiling = min(max_s, initial_s * (2 ** min(max(attempt - 1, 0), 60)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not security
