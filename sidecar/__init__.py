"""Learned sparse and dense retrieval beside Elasticsearch and OpenSearch."""

__version__ = "0.1.0"
