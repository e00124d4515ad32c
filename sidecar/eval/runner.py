"""`sidecar eval`: index a BEIR dataset into the local engine and score every retrieval method.

    dataset -> encode (the enricher, cached) -> index (title, text, sparse[, dense])
            -> per query: BM25 | sparse | dense (engine kNN, or brute force) -> fusions
            -> nDCG@10 and Recall@100 per method
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sidecar.errors import RemoteServiceError, SidecarError
from sidecar.eval.cache import DEFAULT_CACHE_DIR
from sidecar.eval.dataset import DEFAULT_SPLIT, load_dataset
from sidecar.eval.encoding import Encodings, encodings_for
from sidecar.eval.indexing import DENSE_FIELD, SPARSE_FIELD, IndexInfo, build_index, engine_scores_dense
from sidecar.eval.methods import Hybrid, default_hybrids, fuse_runs
from sidecar.eval.reference import Reference
from sidecar.eval.retrieval import DEPTH, MethodScore, retrieve_all, score_run, sweep_weights
from sidecar.pipelines.schema import Engine, FieldConfig
from sidecar.rank_features import Pruning
from sidecar.search.queries import DEFAULT_QUERY_TOP_K
from sidecar.search.searcher import DEFAULT_WEIGHTS
from sidecar.settings import Settings, load_settings

Progress = Callable[[str, int, int], None]  # (stage, done, total)
ENGINE_TIMEOUT_S = 120.0  # the ES-wire emulator takes seconds per query on a large corpus
Weights = Mapping[tuple[str, ...], tuple[float, ...]]
_EVAL_INPUTS = ["title", "text"]
# Elasticsearch's index-name rules (OpenSearch has the same): checked before any encoding starts.
_INDEX_NAME_FORBIDDEN = '\\/*?"<>| ,#:'
_INDEX_NAME_MAX_BYTES = 255
_INDEX_SUFFIX_BYTES = 20  # `-k<top-k>-<8 hex>` or `-full-<8 hex>`


def _field(endpoint: str, target: str, kind: str) -> FieldConfig:
    raw = {"input": _EVAL_INPUTS, "endpoint": endpoint, "target": target, "type": kind}
    return FieldConfig.model_validate(raw)


DEFAULT_SPARSE = _field(".splade-tiny", SPARSE_FIELD, "rank_features")
DEFAULT_DENSE = _field(".minilm-l6", DENSE_FIELD, "dense_vector")


@dataclass
class EvalOptions:
    dataset: Path
    split: str = DEFAULT_SPLIT  # qrels/<split>.tsv
    engine: Engine = Engine.OPENSEARCH
    url: str | None = None  # default: the settings' URL for the engine
    pipeline: Path | None = None
    sparse_endpoint: str | None = None  # overrides the pipeline's / built-in endpoint
    dense_endpoint: str | None = None
    doc_top_k: int | None = None  # None: the pipeline's pruning top_k, else no pruning
    query_top_k: int | None = DEFAULT_QUERY_TOP_K
    bm25: tuple[float, float] | None = None  # (k1, b); None: the engine's defaults
    max_length: int | None = None  # None: the settings' max_seq_length
    dense: bool = True
    reindex: bool = False
    sweep: bool = False
    cache_dir: Path = DEFAULT_CACHE_DIR
    weights: Weights = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    reference: Reference | None = None  # published rows to show beside ours (`--reference`)
    config: Path | None = None  # `--config`: a YAML or .env settings file


@dataclass
class EvalReport:
    dataset: str
    engine: str
    queries: int
    docs: int
    scores: list[MethodScore]
    index: IndexInfo
    sparse_endpoint: str
    dense_endpoint: str | None
    dense_in_engine: bool
    doc_top_k: int | None
    query_top_k: int | None
    max_length: int
    encode_seconds: float
    sweep: list[dict[str, Any]] = field(default_factory=list)
    split: str = DEFAULT_SPLIT
    warnings: list[str] = field(default_factory=list)  # the dataset's (unknown ids in the qrels)
    reference: Reference | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fields_for(options: EvalOptions) -> tuple[FieldConfig, FieldConfig | None]:
    """The pipeline's sparse and dense fields (endpoint, pruning, chunking), else the built-ins.
    Inputs and targets are always the evaluation index's own (title + text -> `sparse`, `dense`)."""
    sparse, dense = DEFAULT_SPARSE, DEFAULT_DENSE
    if options.pipeline is not None:
        from sidecar.pipelines.loader import load_pipeline

        fields = load_pipeline(options.pipeline).fields
        fixed = {"input": _EVAL_INPUTS, "skip_if_unchanged": False, "required": False}
        found = next((f for f in fields if f.type.sparse), None)
        if found is not None:
            sparse = found.model_copy(update={**fixed, "target": SPARSE_FIELD})
        found = next((f for f in fields if not f.type.sparse), None)
        if found is not None:
            dense = found.model_copy(update={**fixed, "target": DENSE_FIELD})
    if options.sparse_endpoint:
        sparse = sparse.model_copy(update={"endpoint": options.sparse_endpoint})
    if options.dense_endpoint:
        dense = dense.model_copy(update={"endpoint": options.dense_endpoint})
    return sparse, (dense if options.dense else None)


@contextlib.asynccontextmanager
async def open_service(settings: Settings) -> AsyncIterator[Any]:
    """The in-process inference service; models load on first use, so cached reruns load none."""
    from sidecar.inference.service import InferenceService

    service = InferenceService.from_settings(settings)
    await service.start()
    try:
        yield service
    finally:
        await service.close()


def endpoint_config(service: Any, endpoint: str) -> Any:
    """The endpoint's public settings (model, chunking): part of the encodings' cache key."""
    registry = getattr(service, "registry", None)
    return registry.get(endpoint).public_dict() if registry is not None else endpoint


def index_prefix(dataset_name: str) -> str:
    """`eval-<dataset>-`, or Elasticsearch's `invalid_index_name_exception` when the folder name
    cannot make an index name (before minutes of encoding, not after)."""
    prefix = f"eval-{dataset_name.lower()}-"
    bad = sorted({c for c in dataset_name if c in _INDEX_NAME_FORBIDDEN})
    problem = f"must not contain the following characters {bad}" if bad else ""
    if not problem and len(prefix.encode()) + _INDEX_SUFFIX_BYTES > _INDEX_NAME_MAX_BYTES:
        problem = f"index name is too long, (over {_INDEX_NAME_MAX_BYTES} bytes)"
    if problem:
        raise SidecarError(f"Invalid index name [{prefix}...], {problem}: rename the dataset folder",
                           status=400, es_type="invalid_index_name_exception")
    return prefix


async def check_engine(client: Any, engine: Engine, url: str) -> None:
    """Fail before encoding when the engine is not there."""
    try:
        await client.request("GET", "/")
    except RemoteServiceError as exc:
        raise RemoteServiceError(
            f"{engine.value} is not reachable at [{url}] ({exc.reason}); start the local stack "
            "(`make stack-up`, then `source .devstack/env`) or pass --url", retriable=True,
        ) from exc


async def run_eval(options: EvalOptions, progress: Progress | None = None) -> EvalReport:
    # Everything that can fail fast does so before the corpus is encoded (minutes on a CPU).
    dataset = load_dataset(options.dataset, options.split)
    prefix = index_prefix(dataset.name)
    sparse_spec, dense_spec = fields_for(options)
    settings = load_settings(options.config, max_seq_length=options.max_length)
    max_length = settings.max_seq_length
    doc_top_k = options.doc_top_k
    if doc_top_k is None and sparse_spec.pruning is not None:
        doc_top_k = sparse_spec.pruning.top_k
    is_opensearch = options.engine is Engine.OPENSEARCH
    url = options.url or (settings.opensearch_url if is_opensearch else settings.es_url)

    def tick(stage: str) -> Callable[[int], None]:
        done = [0]

        def step(n: int) -> None:
            done[0] += n
            if progress is not None:
                progress(stage, done[0], len(dataset.corpus))

        return step

    from sidecar.search.engine import EngineClient

    async with EngineClient([url], timeout_s=ENGINE_TIMEOUT_S) as client:
        await check_engine(client, options.engine, url)
        engine_dense = dense_spec is not None and await engine_scores_dense(client, options.engine.value)

        async with open_service(settings) as service:
            from sidecar.inference.loading import load_models

            encode = functools.partial(
                encodings_for, dataset=dataset, cache_dir=options.cache_dir, max_length=max_length,
                service=service, load_models=functools.partial(load_models, service),
            )
            sparse_config = endpoint_config(service, sparse_spec.endpoint)
            sparse = await encode(sparse_spec, endpoint_config=sparse_config, progress=tick("encode sparse"))
            dense: Encodings | None = None
            if dense_spec is not None:
                dense = await encode(dense_spec, endpoint_config=endpoint_config(service, dense_spec.endpoint),
                                     progress=tick("encode dense"))

        meta = {
            "dataset": f"{dataset.name}-{dataset.fingerprint}",
            "sparse": sparse_config,
            "vectors": [sparse.version, dense.version if dense is not None and engine_dense else None],
            "chunking": sparse_spec.chunking,
            "max_length": max_length,
            "doc_top_k": doc_top_k,
            "dense": dense_spec.endpoint if dense_spec is not None and engine_dense else None,
            "bm25": list(options.bm25) if options.bm25 else None,
            "layout": 1,
        }
        # One index per configuration (hash of `meta`): alternating runs reuse instead of rebuilding.
        digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:8]
        index = f"{prefix}{f'k{doc_top_k}' if doc_top_k else 'full'}-{digest}"
        info = await build_index(
            client, index, dataset, sparse.docs, dense.docs if dense else None,
            pruning=Pruning(top_k=doc_top_k), engine=options.engine.value, engine_dense=engine_dense,
            meta=meta, reindex=options.reindex, bm25=options.bm25,
        )
        runs, notes = await retrieve_all(
            client, options.engine, index, dataset, sparse, dense,
            engine_dense=engine_dense, query_top_k=options.query_top_k,
        )

    scores = [score_run(name, run, dataset, notes[name]) for name, run in runs.items()]
    hybrids: list[Hybrid] = default_hybrids(list(runs), options.weights)
    scores += [score_run(h.name, fuse_runs(runs, h, DEPTH), dataset, "client-side fusion") for h in hybrids]
    return EvalReport(
        dataset=dataset.name,
        engine=options.engine.value,
        queries=len(dataset.queries),
        docs=len(dataset.corpus),
        scores=scores,
        index=info,
        sparse_endpoint=sparse_spec.endpoint,
        dense_endpoint=dense_spec.endpoint if dense_spec else None,
        dense_in_engine=engine_dense,
        doc_top_k=doc_top_k,
        query_top_k=options.query_top_k,
        max_length=max_length,
        encode_seconds=sparse.seconds + (dense.seconds if dense else 0.0),
        sweep=sweep_weights(runs, dataset) if options.sweep else [],
        split=options.split,
        warnings=list(dataset.warnings),
        reference=options.reference,
    )
