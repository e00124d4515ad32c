"""A sidecar server for the whole session, started from the project's environment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.sidecar_process import SidecarProcess, run_sidecar


@pytest.fixture(scope="session")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarProcess]:
    with run_sidecar(tmp_path_factory.mktemp("sidecar")) as process:
        yield process
