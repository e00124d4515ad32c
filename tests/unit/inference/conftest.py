from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sidecar.inference.service import InferenceService
from sidecar.settings import Settings


@pytest.fixture(scope="session")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[InferenceService]:
    """One service with the real packaged tiny models (loaded once, about a second each)."""
    path: Path = tmp_path_factory.mktemp("registry") / "endpoints.sqlite3"
    svc = InferenceService.from_settings(
        Settings(registry_path=path, device="cpu", max_inputs_per_request=8, max_input_chars=5000)
    )
    await svc.start(preload=[".splade-tiny", ".minilm-l6"])
    yield svc
    await svc.close()
