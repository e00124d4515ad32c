"""Dense vectors in the real engines: the mapping `sidecar setup` gives a `dense_vector` target, the
sink's bulk path, then kNN and hybrid search through the search helper, and the evaluation's dense
run. OpenSearch runs them with the local stack's k-NN plugin (Lucene engine); the ES-wire server
with its `dense_vector`. A plain OpenSearch of the test's own (no plugin) shows the fallbacks.

Query and document vectors are chosen here, so the exact cosine order is known; the models' own
vectors are covered by the inference tests and the SciFact search test.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from sidecar.errors import StatusError
from sidecar.eval.dataset import Dataset, Document
from sidecar.eval.dense import BruteForceIndex
from sidecar.eval.encoding import Encodings
from sidecar.eval.indexing import build_index, engine_scores_dense
from sidecar.eval.methods import RankedRun
from sidecar.eval.retrieval import retrieve_all
from sidecar.pipelines.loader import parse_pipeline_text
from sidecar.pipelines.schema import Engine, PipelineConfig
from sidecar.rank_features import Pruning
from sidecar.search.engine import EngineClient, knn_support
from sidecar.search.fusion import Fusion
from sidecar.search.searcher import BM25, DENSE, Searcher, SearchTarget
from sidecar.sinks import BulkItem, create_sink
from sidecar.sinks.setup import IndexSetupError, setup_pipeline
from tests.integration.worker_harness import own_server

pytestmark = pytest.mark.integration

ENDPOINT = ".minilm-l6"
DOCS = {
    "apple-pie": ("apple pie with cinnamon", [0.9, 0.1, 0.0, 0.1]),
    "apple-tree": ("how to prune an apple tree", [0.6, 0.6, 0.1, 0.0]),
    "pear": ("pear sorbet", [0.7, 0.0, 0.7, 0.1]),
    "engine": ("diesel engine repair", [0.0, 0.1, 0.2, 0.95]),
    "sail": ("sailing in a storm", [-0.5, 0.2, 0.1, 0.8]),
}
QUERIES = {"apple pie recipe": [1.0, 0.2, 0.0, 0.0], "fixing engines": [0.1, 0.0, 0.1, 1.0]}


class ChosenVectors:
    """The query encoder the search helper calls, answering with this test's vectors."""

    async def sparse(self, endpoint: str, text: str) -> dict[str, float]:
        raise AssertionError("these pipelines have no sparse field")

    async def dense(self, endpoint: str, text: str) -> list[float]:
        assert endpoint == ENDPOINT
        return QUERIES[text]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.hypot(*a) * math.hypot(*b))


def pipeline(engine: Engine, url: str, name: str) -> PipelineConfig:
    raw = {
        "name": name,
        "source": {"kafka": {"bootstrap_servers": "127.0.0.1:1", "topics": "unused", "group_id": "g"}},
        "fields": [{"input": "title", "endpoint": ENDPOINT, "target": "ml.vec", "type": "dense_vector"}],
        "sink": {"engine": engine.value, "urls": url, "index": name},
    }
    config, problems = parse_pipeline_text(json.dumps(raw), "inline.yaml", env={})
    assert config is not None, problems
    return config


@pytest.fixture(params=[Engine.OPENSEARCH, Engine.ELASTICSEARCH], ids=["opensearch", "es-wire"])
async def indexed(request: pytest.FixtureRequest) -> AsyncIterator[tuple[PipelineConfig, EngineClient]]:
    """A pipeline's index set up and filled through the project's own setup and sink."""
    engine: Engine = request.param
    url = str(request.getfixturevalue("opensearch_url" if engine is Engine.OPENSEARCH else "es_url"))
    config = pipeline(engine, url, f"dense-{uuid.uuid4().hex[:10]}")  # also names its index templates
    index = config.sink.index
    sink = create_sink(config.sink, config.errors, pipeline=config.name)
    client = EngineClient.from_sink(config.sink)
    try:
        await setup_pipeline(config, sink, {ENDPOINT: 4})
        items = [BulkItem(d, index, {"title": t, "ml": {"vec": v}}) for d, (t, v) in DOCS.items()]
        result = await sink.write(items)
        assert result.outcomes == [None] * len(DOCS)
        await client.request("POST", f"/{index}/_refresh")
        yield config, client
    finally:
        await sink.close()
        for name in (index, config.dead_letter_index):
            if name:
                await client.request("DELETE", f"/{name}", ok=(404,))
        for template in (f"sidecar-{config.name}", f"sidecar-{config.name}-dead-letter"):
            await client.request("DELETE", f"/_index_template/{template}", ok=(404,))
        await client.close()


async def test_setup_maps_a_lucene_hnsw_cosine_field(indexed: tuple[PipelineConfig, EngineClient]) -> None:
    config, client = indexed
    answer = await client.request("GET", f"/{config.sink.index}/_mapping")
    field = answer[config.sink.index]["mappings"]["properties"]["ml"]["properties"]["vec"]
    if config.sink.engine is Engine.OPENSEARCH:
        assert field["type"] == "knn_vector" and field["dimension"] == 4
        assert field["method"]["engine"] == "lucene" and field["method"]["name"] == "hnsw"
        assert field["method"]["space_type"] == "cosinesimil"
    else:
        assert field["type"] == "dense_vector" and field["dims"] == 4
    assert await knn_support(client, config.sink.engine) is True


async def test_knn_returns_the_nearest_first(indexed: tuple[PipelineConfig, EngineClient]) -> None:
    config, client = indexed
    searcher = Searcher(SearchTarget.from_pipeline(config), client, ChosenVectors())
    exact = BruteForceIndex({d: v for d, (_, v) in DOCS.items()})
    # Both engines score cosine as (1 + cos) / 2. OpenSearch's Lucene engine stores float32;
    # Elasticsearch quantizes indexed vectors to int8 by default (`int8_hnsw`), as the emulator does,
    # which on five 4-dimensional vectors moves scores by a few hundredths.
    tolerance = 1e-5 if config.sink.engine is Engine.OPENSEARCH else 0.05
    for text, vector in QUERIES.items():
        hits = await searcher.run_dense(vector, 3)
        assert [h.doc_id for h in hits] == [d for d, _ in exact.search(vector, 3)]
        for hit in hits:
            expected = (1 + cosine(vector, DOCS[hit.doc_id][1])) / 2
            assert hit.score == pytest.approx(expected, rel=tolerance, abs=tolerance)
            assert hit.source == {"title": DOCS[hit.doc_id][0]}  # the text field, not the vector
        plain = await searcher.search(text, k=2)
        assert list(plain.methods) == [DENSE]
        assert [h.doc_id for h in plain.hits] == [h.doc_id for h in hits[:2]]


async def test_hybrid_fuses_bm25_and_knn(indexed: tuple[PipelineConfig, EngineClient]) -> None:
    config, client = indexed
    searcher = Searcher(SearchTarget.from_pipeline(config), client, ChosenVectors())
    result = await searcher.search("apple pie recipe", k=4, hybrid=True, fusion=Fusion.MINMAX)
    assert list(result.methods) == [BM25, DENSE]
    bm25 = [h.doc_id for h in result.methods[BM25]]
    dense = [h.doc_id for h in result.methods[DENSE]]
    assert bm25[0] == "apple-pie" and dense[0] == "apple-pie"  # best in both lists: first when fused
    assert set(bm25) == {"apple-pie", "apple-tree"}  # BM25 matches words; kNN returns every neighbour
    assert len(dense) == len(DOCS)
    assert result.hits[0].doc_id == "apple-pie" and len(result.hits) == 4
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True)
    rrf = await searcher.search("apple pie recipe", k=4, hybrid=True, fusion=Fusion.RRF)
    assert rrf.hits[0].doc_id == "apple-pie"



async def eval_dense(client: EngineClient, engine: Engine, engine_dense: bool) -> tuple[RankedRun, str]:
    """The evaluation's dense run over DOCS and QUERIES (its index built and deleted here), and its note."""
    corpus = {d: Document(d, title, title) for d, (title, _) in DOCS.items()}
    queries = {f"q{i}": text for i, text in enumerate(QUERIES)}
    dataset = Dataset("tiny", corpus, queries, {"q0": {"apple-pie": 1}, "q1": {"engine": 1}})
    words = Encodings({d: {w: 1.0 for w in t.split()} for d, (t, _) in DOCS.items()},
                      {q: {w: 1.0 for w in t.split()} for q, t in queries.items()}, 0.0)
    dense = Encodings({d: v for d, (_, v) in DOCS.items()}, {q: QUERIES[t] for q, t in queries.items()}, 0.0)
    index = f"eval-tiny-{uuid.uuid4().hex[:10]}"
    try:
        await build_index(client, index, dataset, words.docs, dense.docs, pruning=Pruning(),
                          engine=engine.value, engine_dense=engine_dense, meta={})
        runs, notes = await retrieve_all(client, engine, index, dataset, words, dense,
                                         engine_dense=engine_dense, query_top_k=None)
    finally:
        await client.request("DELETE", f"/{index}", ok=(404,))
    return {queries[q]: hits for q, hits in runs["dense"].items()}, notes["dense"]


def assert_exact_order(run: RankedRun, depth: int = len(DOCS)) -> None:
    exact = BruteForceIndex({d: v for d, (_, v) in DOCS.items()})
    for text, vector in QUERIES.items():
        assert [d for d, _ in run[text]][:depth] == [d for d, _ in exact.search(vector, depth)]


@pytest.mark.parametrize("engine", [Engine.OPENSEARCH, Engine.ELASTICSEARCH], ids=["opensearch", "es-wire"])
async def test_eval_runs_dense_as_engine_knn(engine: Engine, request: pytest.FixtureRequest) -> None:
    url = str(request.getfixturevalue("opensearch_url" if engine is Engine.OPENSEARCH else "es_url"))
    async with EngineClient([url]) as client:
        assert await engine_scores_dense(client, engine) is True
        run, note = await eval_dense(client, engine, engine_dense=True)
    assert note == "engine kNN"
    assert len(run["apple pie recipe"]) == len(DOCS)  # five documents: HNSW finds them all
    # In cosine order; the emulator's int8-quantized vectors may swap the two far ones.
    assert_exact_order(run, len(DOCS) if engine is Engine.OPENSEARCH else 3)


async def test_without_the_plugin_eval_falls_back_and_search_says_why(tmp_path: Path) -> None:
    with own_server("opensearch", tmp_path / "devstack", plugins="") as server:
        async with EngineClient([server.address]) as client:
            assert await engine_scores_dense(client, Engine.OPENSEARCH) is False
            run, note = await eval_dense(client, Engine.OPENSEARCH, engine_dense=False)
            assert "brute force" in note
            assert_exact_order(run)

            config = pipeline(Engine.OPENSEARCH, server.address, "dense-plain")
            sink = create_sink(config.sink, config.errors, pipeline=config.name)
            try:
                with pytest.raises(IndexSetupError, match=r"unknown setting \[index.knn\]"):
                    await setup_pipeline(config, sink, {ENDPOINT: 4})
            finally:
                await sink.close()
            searcher = Searcher(SearchTarget.from_pipeline(config), client, ChosenVectors())
            with pytest.raises(StatusError, match="has no k-NN plugin"):
                await searcher.search("fixing engines")
