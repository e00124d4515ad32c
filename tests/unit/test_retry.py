"""The one retry policy (`sidecar.retry`): the backoff formula, the async and blocking helpers, and a
guard that no module grows a retry loop of its own again."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sidecar.retry import Backoff, TryAgain, retry_async, retry_sync

TINY = Backoff(0.001, 0.002)


def test_backoff_is_jittered_exponential_and_capped() -> None:
    backoff = Backoff(0.1, 10.0)
    for attempt in range(1, 12):
        ceiling = min(10.0, 0.1 * 2 ** (attempt - 1))
        delays = {backoff.delay(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1


def test_backoff_stays_capped_after_thousands_of_retries() -> None:
    # An outage retried every few seconds for hours reaches attempt numbers past 1,024.
    assert all(0.5 <= Backoff(0.2, 1.0).delay(attempt) <= 1.0 for attempt in (50, 1_100, 100_000))


def test_retry_after_wins_within_the_ceiling() -> None:
    backoff = Backoff.from_ms(100, 5_000)
    assert backoff.delay(1, "3") == 3.0
    assert backoff.delay(1, "120") == 5.0  # a server asking for minutes still gets the ceiling
    assert backoff.delay(1, "-4") == 0.0
    # An HTTP date is not parsed: our own schedule applies.
    assert 0.05 <= backoff.delay(1, "Wed, 21 Oct 2026 07:28:00 GMT") <= 0.1


async def test_retries_until_the_call_returns_and_reports_each_retry() -> None:
    calls: list[int] = []
    told: list[tuple[int, str]] = []
    pauses: list[bool] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise TryAgain(f"not yet {len(calls)}")
        return "done"

    result = await retry_async(
        flaky,
        TINY,
        retry_on=TryAgain,
        on_retry=lambda n, exc: told.append((n, str(exc))),
        waiting=pauses.append,
    )
    assert result == "done" and len(calls) == 4
    assert told == [(1, "not yet 1"), (2, "not yet 2"), (3, "not yet 3")]
    assert pauses == [True, False]  # one pause for the whole episode, released at the end


async def test_a_first_success_neither_waits_nor_pauses() -> None:
    pauses: list[bool] = []

    async def fine() -> int:
        return 7

    assert await retry_async(fine, TINY, retry_on=TryAgain, waiting=pauses.append) == 7
    assert await retry_async(lambda: fine(), TINY, retry_on=TryAgain) == 7  # a lambda's awaitable too
    assert pauses == []


async def test_what_retry_on_does_not_cover_propagates_at_once_and_releases_the_pause() -> None:
    calls: list[int] = []
    pauses: list[bool] = []

    async def breaks() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise TryAgain("busy")
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        await retry_async(breaks, TINY, retry_on=TryAgain, waiting=pauses.append)
    assert len(calls) == 2 and pauses == [True, False]


async def test_attempts_bound_the_calls_and_the_last_error_is_raised() -> None:
    calls: list[int] = []

    async def always() -> None:
        calls.append(1)
        raise TryAgain(f"try {len(calls)}")

    with pytest.raises(TryAgain, match="try 3"):
        await retry_async(always, TINY, retry_on=TryAgain, attempts=3)
    assert len(calls) == 3


async def test_a_predicate_chooses_what_to_retry() -> None:
    class Answer(Exception):
        def __init__(self, status: int) -> None:
            super().__init__(status)
            self.status = status

    statuses = iter([503, 429, 400])

    async def call() -> None:
        raise Answer(next(statuses))

    with pytest.raises(Answer) as raised:
        await retry_async(call, TINY, retry_on=lambda exc: isinstance(exc, Answer) and exc.status >= 429)
    assert raised.value.status == 400


def test_the_blocking_helper_follows_the_same_policy() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TryAgain("conflict")
        return "ok"

    assert retry_sync(flaky, TINY, retry_on=TryAgain) == "ok" and len(calls) == 3
    calls.clear()
    with pytest.raises(TryAgain):
        retry_sync(flaky, TINY, retry_on=TryAgain, attempts=2)
    assert len(calls) == 2


def test_within_s_stops_a_retry_that_never_succeeds() -> None:
    calls: list[int] = []

    def unready() -> None:
        calls.append(1)
        raise TryAgain("503")

    with pytest.raises(TryAgain):
        retry_sync(unready, Backoff(0.01, 0.02), retry_on=TryAgain, within_s=0.05)
    assert len(calls) >= 2


# Modules allowed to sleep, and why; any other sleep in the package is a retry loop of its own.
SLEEPERS = {
    "retry.py": "the one policy (through tenacity)",
    "sinks/base.py": "per-item bulk retries: their bookkeeping on top of Backoff.delay",
    "inference/services/remote.py": "the rate limiter spaces calls (not a retry)",
    "backfill/pacing.py": "the backfill's documents-per-second pacing (not a retry)",
    "commands/demo.py": "the demo's progress display (not a retry)",
}


def test_no_module_writes_its_own_retry_loop() -> None:
    package = Path(__file__).resolve().parents[2] / "sidecar"
    sleepers: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "sleep":
                sleepers.add(path.relative_to(package).as_posix())
    assert sleepers <= set(SLEEPERS), sorted(sleepers - set(SLEEPERS))
    delays = {
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if ".delay(" in path.read_text(encoding="utf-8")
    }
    assert delays <= {"retry.py", "sinks/base.py"}, delays
