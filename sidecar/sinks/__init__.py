"""Bulk sinks: Elasticsearch and OpenSearch, sharing their retry and outcome logic in `base`."""

from __future__ import annotations

from collections.abc import Callable

from sidecar.pipelines.schema import Engine, ErrorsConfig, SinkConfig
from sidecar.sinks.base import BulkItem, BulkResult, BulkSink


def create_sink(
    config: SinkConfig,
    errors: ErrorsConfig,
    *,
    pipeline: str = "",
    on_pushback: Callable[[bool], None] | None = None,
) -> BulkSink:
    """The sink for `config.engine`; each engine's client library is imported only when used."""
    if config.engine is Engine.OPENSEARCH:
        from sidecar.sinks.opensearch import OpenSearchSink

        return OpenSearchSink(config, errors, pipeline=pipeline, on_pushback=on_pushback)
    from sidecar.sinks.elasticsearch import ElasticsearchSink

    return ElasticsearchSink(config, errors, pipeline=pipeline, on_pushback=on_pushback)


__all__ = ["BulkItem", "BulkResult", "BulkSink", "create_sink"]
