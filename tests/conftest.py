"""Shared pytest configuration: real-server fixtures and server logs attached to failing tests."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from tests.stack import es_url, kafka_bootstrap, opensearch_url, server_log_tails, stack_manager

__all__ = ["es_url", "kafka_bootstrap", "opensearch_url", "stack_manager"]

SERVER_FIXTURES = {"kafka_bootstrap", "opensearch_url", "es_url"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    uses_servers = SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
    if report.failed and uses_servers:
        report.sections.append(("local stack logs", server_log_tails()))
