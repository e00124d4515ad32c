from __future__ import annotations

import pytest

from tests.unit.worker.fakes import FakeService


@pytest.fixture
def service() -> FakeService:
    return FakeService()
