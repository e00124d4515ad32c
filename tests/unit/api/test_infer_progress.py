"""`sidecar infer` shows a progress line for work that takes longer than the notice delay, and
nothing for quick work."""

from __future__ import annotations

import asyncio

import pytest

from sidecar.api.infer_command import with_progress


async def test_slow_work_says_what_it_does_then_how_long_it_took(capsys: pytest.CaptureFixture[str]) -> None:
    release = asyncio.Event()

    async def load() -> None:
        await release.wait()

    waiting = asyncio.create_task(with_progress(load(), "loading model m", notice_after_s=0.0))
    for _ in range(1000):  # the notice comes while the load still runs
        err = capsys.readouterr().err
        if err:
            break
        await asyncio.sleep(0.01)
    assert err == "loading model m ...\n"
    assert not waiting.done()
    release.set()
    await waiting
    assert capsys.readouterr().err.startswith("loading model m: done in ")


async def test_quick_work_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    async def load() -> None:
        return None

    await with_progress(load(), "loading model m", notice_after_s=60.0)
    assert capsys.readouterr().err == ""


async def test_a_failure_comes_through(capsys: pytest.CaptureFixture[str]) -> None:
    async def load() -> None:
        raise FileNotFoundError("no model")

    with pytest.raises(FileNotFoundError):
        await with_progress(load(), "loading model m", notice_after_s=60.0)
