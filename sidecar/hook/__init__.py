"""The ingest hook: Elasticsearch's document-write APIs, enriched on their way into the engine.

    client ──_bulk NDJSON──▶ lines (streamed, per-line limit) ──▶ bulk operations
        ──▶ window of operations ──▶ enrich the ones whose index a pipeline selects (Enricher)
        ──▶ spool (memory, then a temporary file) ──▶ one bulk request to the engine
        ──▶ engine items + our per-item errors, merged in the original order ──▶ client

Indices no pipeline selects pass through byte for byte; an item that cannot be enriched is not
sent and gets an Elasticsearch-style per-item error (400, or 429 when inference is overloaded).
"""
