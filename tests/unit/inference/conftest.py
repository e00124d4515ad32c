from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sidecar.inference.service import InferenceService
from sidecar.settings import Settings


@pytest.fixture(scope="session")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[InferenceService]:
    """One service with the real packaged tiny models (loaded once, about a second each), on torch:
    tests compare with the torch model itself (the OpenVINO runtime: test_openvino_runtime.py)."""
    path: Path = tmp_path_factory.mktemp("registry") / "endpoints.sqlite3"
    svc = InferenceService.from_settings(
        Settings(
            registry_path=path,
            device="cpu",
            cpu_runtime="torch",
            max_inputs_per_request=8,
            max_input_chars=5000,
        )
    )
    await svc.start(preload=[".splade-tiny", ".minilm-l6"])
    yield svc
    await svc.close()


@pytest.fixture
async def remote(tmp_path: Path) -> AsyncIterator[InferenceService]:
    """A service with fast retries, for the remote services' local provider servers."""
    from sidecar.inference.services.remote import RetryPolicy

    svc = InferenceService.from_settings(Settings(registry_path=tmp_path / "r.sqlite3"))
    svc.retry_policy = RetryPolicy(max_retries=2, base_delay_s=0.01, max_delay_s=0.05, timeout_s=5)
    yield svc
    await svc.close()
