"""Bulk sinks: Elasticsearch and OpenSearch, sharing their retry and outcome logic in `base`."""
