"""Search an index a pipeline fills: sparse (`rank_feature` dot product), BM25, dense, and hybrids.

    query text -> encode (pipeline endpoint) -> prune to top terms -> engine query per method
               -> client-side fusion (min-max weighted sum or RRF) -> hits

`search()` is the one-call Python API behind `sidecar search`; `Searcher` keeps a client and an
encoder open for many queries (the evaluation uses it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sidecar.errors import RequestValidationError, StatusError
from sidecar.pipelines.schema import Engine, PipelineConfig, TargetType
from sidecar.search import queries
from sidecar.search.encode import QueryEncoder
from sidecar.search.engine import EngineClient, Hit, knn_support
from sidecar.search.fusion import Fusion, fuse, parse_fusion
from sidecar.settings import Settings

BM25, SPARSE, DENSE = "bm25", "sparse", "dense"
DEFAULT_DEPTH = 100  # candidates per method before fusion (also what Recall@100 needs)
# Chosen from the SciFact measurements in docs/quality.md: min-max beat RRF for every combination,
# and these weights sit on the plateau of the sweep (BM25 a little above the learned model).
DEFAULT_FUSION = Fusion.MINMAX
DEFAULT_WEIGHTS: dict[tuple[str, ...], tuple[float, ...]] = {
    (BM25, SPARSE): (0.6, 0.4),
    (BM25, DENSE): (0.6, 0.4),
    (BM25, SPARSE, DENSE): (0.3, 0.3, 0.4),
}


@dataclass(frozen=True)
class SearchTarget:
    """Where and how to search: the index, its text fields and its vector fields with their endpoints."""

    engine: Engine
    index: str
    text_fields: tuple[str, ...] = ()
    sparse_field: str | None = None
    sparse_endpoint: str | None = None
    dense_field: str | None = None
    dense_endpoint: str | None = None

    @classmethod
    def from_pipeline(cls, pipeline: PipelineConfig) -> SearchTarget:
        sparse = next((f for f in pipeline.fields if f.type is TargetType.RANK_FEATURES), None)
        dense = next((f for f in pipeline.fields if f.type is TargetType.DENSE_VECTOR), None)
        if sparse is None and dense is None:
            raise RequestValidationError(
                f"pipeline [{pipeline.name}] has no rank_features or dense_vector field to search"
            )
        inputs = [p for f in pipeline.fields for p in f.input]
        return cls(
            engine=pipeline.sink.engine,
            index=pipeline.sink.index,
            text_fields=tuple(dict.fromkeys(inputs)),
            sparse_field=sparse.target if sparse else None,
            sparse_endpoint=sparse.endpoint if sparse else None,
            dense_field=dense.target if dense else None,
            dense_endpoint=dense.endpoint if dense else None,
        )

    def methods(self, hybrid: bool) -> tuple[str, ...]:
        """Sparse alone (dense when there is no sparse field), or BM25 plus every vector field."""
        vectors = tuple(m for m, f in ((SPARSE, self.sparse_field), (DENSE, self.dense_field)) if f)
        return (BM25, *vectors) if hybrid else vectors[:1]

    def plan(
        self, text: str, *, k: int, hybrid: bool, fusion: Fusion | str, weights: str | Sequence[float] | None
    ) -> tuple[tuple[str, ...], Fusion, tuple[float, ...] | None]:
        """The methods, fusion and weights of a search; bad requests fail here, before any model or
        engine work."""
        if not text.strip():
            raise RequestValidationError("the query text is empty")
        if k < 1:
            raise RequestValidationError("k must be at least 1")
        methods = self.methods(hybrid)
        method = parse_fusion(fusion)
        return methods, method, parse_weights(weights, methods) if len(methods) > 1 else None

    def endpoints(self, methods: Sequence[str]) -> list[str]:
        """The endpoints that encode the query for these methods (their models load first)."""
        pairs = ((SPARSE, self.sparse_endpoint), (DENSE, self.dense_endpoint))
        return list(dict.fromkeys(e for m, e in pairs if m in methods and e))


@dataclass
class SearchResult:
    hits: list[Hit]
    methods: dict[str, list[Hit]] = field(default_factory=dict)  # each method's own list
    fusion: Fusion | None = None
    weights: tuple[float, ...] | None = None
    query_terms: int | None = None  # sparse query tokens sent, after pruning


def parse_weights(raw: str | Sequence[float] | None, methods: Sequence[str]) -> tuple[float, ...]:
    """`0.4,0.6` (in method order) or `bm25=0.4,sparse=0.6`; default from `DEFAULT_WEIGHTS`."""
    if raw is None:
        return DEFAULT_WEIGHTS.get(tuple(methods), tuple(1.0 for _ in methods))
    if not isinstance(raw, str):
        values = tuple(float(w) for w in raw)
    else:
        parts = [p.strip() for p in raw.split(",") if p.strip()]
        try:
            if parts and all("=" in p for p in parts):
                named = {k.strip(): float(v) for k, v in (p.split("=", 1) for p in parts)}
                unknown = set(named) - set(methods)
                if unknown:
                    raise RequestValidationError(
                        f"weights name {sorted(unknown)}; the methods are {list(methods)}"
                    )
                values = tuple(named.get(m, 0.0) for m in methods)
            else:
                values = tuple(float(p) for p in parts)
        except ValueError:
            raise RequestValidationError(f"weights [{raw}] are not numbers") from None
    if len(values) != len(methods):
        raise RequestValidationError(f"got {len(values)} weights for the methods {list(methods)}")
    if any(w < 0 for w in values) or not any(w > 0 for w in values):
        raise RequestValidationError("weights must be >= 0 and not all 0")
    return values


class Searcher:
    def __init__(
        self,
        target: SearchTarget,
        client: EngineClient,
        encoder: QueryEncoder,
        *,
        query_top_k: int | None = queries.DEFAULT_QUERY_TOP_K,
        depth: int = DEFAULT_DEPTH,
        source: bool | list[str] | None = None,
        bm25_type: queries.Bm25Type = queries.DEFAULT_BM25_TYPE,
    ) -> None:
        self.target = target
        self.client = client
        self.encoder = encoder
        self.query_top_k = query_top_k
        self.depth = depth
        self.bm25_type = bm25_type
        # Hits carry the text fields (for display), never the vectors.
        self.source: bool | list[str] = list(target.text_fields) if source is None else source

    async def sparse_weights(self, text: str) -> dict[str, float]:
        if self.target.sparse_endpoint is None:
            raise RequestValidationError("this index has no sparse field")
        weights = await self.encoder.sparse(self.target.sparse_endpoint, text)
        return queries.prune_query(weights, self.query_top_k)

    async def run_sparse(self, weights: dict[str, float], size: int) -> list[Hit]:
        if self.target.sparse_field is None:
            raise RequestValidationError("this index has no sparse field")
        query = queries.sparse_query(self.target.sparse_field, weights)
        body = queries.search_body(query, size, source=self.source)
        return await self.client.search(self.target.index, body)

    async def run_bm25(self, text: str, size: int) -> list[Hit]:
        query = queries.bm25_query(text, self.target.text_fields, self.bm25_type)
        body = queries.search_body(query, size, source=self.source)
        return await self.client.search(self.target.index, body)

    async def run_dense(self, vector: Sequence[float], size: int) -> list[Hit]:
        dense_field = self.target.dense_field
        if dense_field is None:
            raise RequestValidationError("this index has no dense field")
        if not await knn_support(self.client, self.target.engine):
            raise StatusError(
                f"OpenSearch at {self.client.urls} has no k-NN plugin, so the dense field [{dense_field}] "
                "cannot be searched: install opensearch-knn (the local stack has it)"
            )
        body = queries.knn_body(self.target.engine.value, dense_field, vector, size, source=self.source)
        return await self.client.search(self.target.index, body)

    async def method(
        self, name: str, text: str, size: int, *, sparse_weights: dict[str, float] | None = None
    ) -> list[Hit]:
        """One method's ranked list; `sparse_weights` saves re-encoding an already encoded query."""
        if name == BM25:
            return await self.run_bm25(text, size)
        if name == SPARSE:
            weights = sparse_weights if sparse_weights is not None else await self.sparse_weights(text)
            return await self.run_sparse(weights, size)
        if name == DENSE:
            if self.target.dense_endpoint is None:
                raise RequestValidationError("this index has no dense field")
            return await self.run_dense(await self.encoder.dense(self.target.dense_endpoint, text), size)
        raise RequestValidationError(f"unknown search method [{name}]")

    async def search(
        self,
        text: str,
        *,
        k: int = 10,
        hybrid: bool = False,
        fusion: Fusion | str = DEFAULT_FUSION,
        weights: str | Sequence[float] | None = None,
    ) -> SearchResult:
        methods, method, ws = self.target.plan(text, k=k, hybrid=hybrid, fusion=fusion, weights=weights)
        sparse = await self.sparse_weights(text) if SPARSE in methods else None
        terms = None if sparse is None else len(sparse)
        if ws is None:
            hits = self._in_field_order(await self.method(methods[0], text, k, sparse_weights=sparse))
            return SearchResult(hits, {methods[0]: hits}, query_terms=terms)
        depth = max(k, self.depth)
        lists = await asyncio.gather(*(self.method(m, text, depth, sparse_weights=sparse) for m in methods))
        sources = {h.doc_id: h.source for hits in lists for h in hits}
        fused = fuse(method, [[(h.doc_id, h.score) for h in hits] for hits in lists], ws, size=k)
        hits = self._in_field_order([Hit(doc, score, sources.get(doc, {})) for doc, score in fused])
        return SearchResult(hits, dict(zip(methods, lists, strict=True)), method, ws, terms)

    def _in_field_order(self, hits: list[Hit]) -> list[Hit]:
        """Sources with the pipeline's text fields first, in its order (engines may sort them)."""
        order = {name: i for i, name in enumerate(self.target.text_fields)}
        return [
            Hit(h.doc_id, h.score, dict(sorted(h.source.items(), key=lambda kv: order.get(kv[0], len(order)))))
            for h in hits
        ]


async def search(
    pipeline: PipelineConfig | str | Path,
    text: str,
    *,
    k: int = 10,
    hybrid: bool = False,
    fusion: Fusion | str = DEFAULT_FUSION,
    weights: str | Sequence[float] | None = None,
    query_top_k: int | None = queries.DEFAULT_QUERY_TOP_K,
    encoder: QueryEncoder | None = None,
    settings: Settings | None = None,
) -> SearchResult:
    """Search the index a pipeline writes; starts (and stops) an inference service unless given an encoder."""
    from sidecar.search.session import open_encoder

    if not isinstance(pipeline, PipelineConfig):
        from sidecar.pipelines.loader import load_pipeline

        pipeline = load_pipeline(pipeline)
    target = SearchTarget.from_pipeline(pipeline)
    methods, _, _ = target.plan(text, k=k, hybrid=hybrid, fusion=fusion, weights=weights)
    preload = target.endpoints(methods)
    async with (
        EngineClient.from_sink(pipeline.sink) as client,
        open_encoder(pipeline, encoder, settings, preload=preload) as enc,
    ):
        searcher = Searcher(target, client, enc, query_top_k=query_top_k)
        return await searcher.search(text, k=k, hybrid=hybrid, fusion=fusion, weights=weights)
