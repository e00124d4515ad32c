"""Session fixtures for the three real servers: Kafka, OpenSearch and an Elasticsearch-wire server.

Order of preference for each server:
1. `SIDECAR_TEST_KAFKA_BOOTSTRAP` / `SIDECAR_TEST_OPENSEARCH_URL` / `SIDECAR_TEST_ES_URL`: external servers.
2. A stack already running from `make stack-up` (reused, left running).
3. A Docker engine that answers (`SIDECAR_TEST_DOCKER=1`): real images started with testcontainers.
4. The project's own devstack, started here and stopped when the session ends.

A server that cannot be had fails the run: integration tests are never skipped.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from devstack import stack as devstack

ES_IMAGE = os.environ.get("SIDECAR_TEST_ES_IMAGE", "docker.elastic.co/elasticsearch/elasticsearch:8.15.3")
KAFKA_IMAGE = os.environ.get("SIDECAR_TEST_KAFKA_IMAGE", "apache/kafka:4.1.1")
OPENSEARCH_IMAGE = os.environ.get("SIDECAR_TEST_OPENSEARCH_IMAGE", "opensearchproject/opensearch:2.19.1")


class StackManager:
    """Starts each server at most once per session and remembers what it must stop."""

    def __init__(self) -> None:
        self._urls: dict[str, str] = {}
        self._exit = ExitStack()
        self.started_here: list[str] = []

    def url(self, name: str) -> str:
        if name not in self._urls:
            self._urls[name] = self._obtain(name)
        return self._urls[name]

    def _obtain(self, name: str) -> str:
        server = devstack.SERVERS[name]
        external = os.environ.get(server.env_var.replace("SIDECAR_", "SIDECAR_TEST_"))
        if external:
            return external
        if server.pid() is not None and server.ready():
            return server.url
        if os.environ.get("SIDECAR_TEST_DOCKER") == "1":
            return self._docker(name)
        try:
            devstack.STATE.mkdir(parents=True, exist_ok=True)
            server.up()
        except devstack.StackError as exc:
            pytest.fail(f"could not start {name}: {exc}", pytrace=False)
        self.started_here.append(name)
        self._exit.callback(server.down)
        devstack.write_env()
        return server.url

    def _docker(self, name: str) -> str:
        container: Any
        if name == "kafka":
            from testcontainers.kafka import KafkaContainer

            container = self._exit.enter_context(KafkaContainer(KAFKA_IMAGE).with_kraft())
            return str(container.get_bootstrap_server())
        from testcontainers.elasticsearch import ElasticSearchContainer

        image = ES_IMAGE if name == "elasticsearch" else OPENSEARCH_IMAGE
        container = ElasticSearchContainer(image)
        if name == "opensearch":
            container.with_env("DISABLE_SECURITY_PLUGIN", "true")
        container = self._exit.enter_context(container)
        return str(container.get_url())

    def close(self) -> None:
        self._exit.close()


@pytest.fixture(scope="session")
def stack_manager() -> Iterator[StackManager]:
    manager = StackManager()
    yield manager
    manager.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(stack_manager: StackManager) -> str:
    return stack_manager.url("kafka")


@pytest.fixture(scope="session")
def opensearch_url(stack_manager: StackManager) -> str:
    return stack_manager.url("opensearch")


@pytest.fixture(scope="session")
def es_url(stack_manager: StackManager) -> str:
    return stack_manager.url("elasticsearch")


def server_log_tails(lines: int = 30) -> str:
    parts = []
    for server in devstack.SERVERS.values():
        if server.log_file.exists():
            parts.append(
                f"--- {server.log_file} (last {lines} lines)\n{devstack.tail(server.log_file, lines)}"
            )
    return "\n".join(parts)


def engine_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - test servers on loopback
        return bytes(resp.read())
