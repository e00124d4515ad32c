"""Learned sparse and dense retrieval beside Elasticsearch and OpenSearch.

Layers, lowest first: a module imports only from its own layer or lower ones, and the packages'
import graph has no cycle (`tests/unit/test_layers.py` checks both).

- errors, settings, observability, redact, jsontext, retry: the error tree, typed settings, logging and
  metrics, secret redaction, strict JSON text checks, the one backoff formula
- rank_features: what a `rank_features` / `sparse_vector` field accepts, and pruning
- inference: endpoints, models, batching, local and remote services, the `_inference` client
- pipelines: pipeline files (schema, loader, checks, index-name date math)
- enrichment: the one enrichment path (fields -> inference -> document values)
- sinks, sources, deadletter: bulk writes to the engines, Kafka, dead letters
- worker, hook, backfill, api, search: the entry points and the HTTP API
- eval: search-quality evaluation
- commands, cli: command-line commands and the console script
"""

__version__ = "0.1.0"
