"""The Elasticsearch-compatible HTTP API (`sidecar serve`)."""
