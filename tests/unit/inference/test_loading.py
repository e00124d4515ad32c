"""Model loading at a terminal (`infer`, `search`, `eval`, `demo`): a progress line for work that
takes longer than the notice delay, nothing for quick work, and the models loaded before any
request."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sidecar.inference.loading import load_models, with_progress
from sidecar.inference.service import InferenceService
from sidecar.settings import Settings


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


async def test_quick_work_prints_nothing_and_returns_its_result(capsys: pytest.CaptureFixture[str]) -> None:
    async def load() -> int:
        return 7

    assert await with_progress(load(), "loading model m", notice_after_s=60.0) == 7
    assert capsys.readouterr().err == ""


async def test_a_failure_comes_through(capsys: pytest.CaptureFixture[str]) -> None:
    async def load() -> None:
        raise FileNotFoundError("no model")

    with pytest.raises(FileNotFoundError):
        await with_progress(load(), "loading model m", notice_after_s=60.0)


async def test_load_models_names_the_models_and_loads_them_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service = InferenceService.from_settings(Settings(registry_path=tmp_path / "r.sqlite3", device="cpu"))
    try:
        await service.start()
        assert not service.pool._engines
        # notice_after_s=0: the load has not even begun when the notice is due, so it always prints.
        await load_models(service, [".splade-tiny", ".minilm-l6"], notice_after_s=0.0)
        # Log records of handlers other tests installed may share stderr: keep the notices only.
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("loading model ")]
        models = ", ".join(
            str(service.registry.get(e).service_settings["model_id"]) for e in (".splade-tiny", ".minilm-l6")
        )
        assert err[0] == f"loading model {models} ..."
        assert err[1].startswith(f"loading model {models}: done in ")
        assert len(service.pool._engines) == 2
    finally:
        await service.close()
