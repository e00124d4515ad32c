"""The one enrichment path: pipeline fields -> inference -> values written into documents.

The Kafka worker, the ingest hook, the backfill and the evaluation all use `Enricher`: inputs read
once, chunked once, encoded through the inference service (fields concurrently, so their texts
share the batcher), cleaned once (`rank_features` rules and pruning), content hashes compared for
`skip_if_unchanged`, and one `DocumentError` per document that cannot be enriched.
"""

from sidecar.enrichment.documents import MISSING, apply_additions, get_path, nested, set_path
from sidecar.enrichment.enricher import Enricher, EnrichResult, EnrichTask, content_hash

__all__ = [
    "MISSING",
    "EnrichResult",
    "EnrichTask",
    "Enricher",
    "apply_additions",
    "content_hash",
    "get_path",
    "nested",
    "set_path",
]
