"""Backfills: enrich the documents already in an index, resumable, sliceable across pods.

    point in time (+ slice) ──search_after pages──▶ select (missing / changed / all)
        ──▶ Enricher (inference) ──▶ partial `update`s (scripted replacement) ──▶ bulk sink
        ──▶ dead letters for failures ──▶ checkpoint (engine document or file) ──▶ next page

A checkpoint is written after each acknowledged batch; a restarted run resumes from it. Documents
already enriched are found by the content hash stored beside each vector, so a re-run over a
finished index scans nothing and infers nothing.
"""
