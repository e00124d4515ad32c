"""Search and evaluation end to end on ~200 SciFact documents, on real OpenSearch and the ES-wire server.

The corpus slice holds the relevant documents of the first queries plus others; the real inference
service encodes it (packaged SPLADE-tiny and MiniLM), `sidecar eval`'s runner indexes it and scores
every method, then the search helper's Python API queries the same index, plain and hybrid.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from sidecar.cli import app
from sidecar.eval.dataset import load_dataset
from sidecar.eval.runner import EvalOptions, EvalReport, run_eval
from sidecar.pipelines.loader import parse_pipeline_text
from sidecar.pipelines.schema import Engine, PipelineConfig
from sidecar.search.fusion import Fusion
from sidecar.search.searcher import BM25, DENSE, SPARSE, search
from sidecar.search.session import open_service_encoder

pytestmark = pytest.mark.integration

SCIFACT = Path(__file__).resolve().parents[2] / "datasets" / "scifact"
QUERIES = 30
DOCS = 200


@pytest.fixture(scope="module")
def small_scifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BEIR folder: the first queries, their relevant documents, and other documents up to DOCS."""
    full = load_dataset(SCIFACT)
    queries = list(full.queries)[:QUERIES]
    wanted = list(dict.fromkeys(d for q in queries for d in full.qrels[q]))
    wanted += [d for d in full.corpus if d not in set(wanted)][: DOCS - len(wanted)]
    folder = tmp_path_factory.mktemp("data") / f"scifact{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    with (folder / "corpus.jsonl").open("w") as out:
        for d in wanted:
            doc = full.corpus[d]
            out.write(json.dumps({"_id": d, "title": doc.title, "text": doc.text}) + "\n")
    with (folder / "queries.jsonl").open("w") as out:
        for q in queries:
            out.write(json.dumps({"_id": q, "text": full.queries[q]}) + "\n")
    judged = [f"{q}\t{d}\t{r}" for q in queries for d, r in full.qrels[q].items()]
    lines = ["query-id\tcorpus-id\tscore", *judged]
    (folder / "qrels.tsv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("encodings")  # shared by both engines: encode once


@pytest.fixture(params=[Engine.OPENSEARCH, Engine.ELASTICSEARCH], ids=["opensearch", "es-wire"])
def engine_url(request: pytest.FixtureRequest, small_scifact: Path) -> Iterator[tuple[Engine, str]]:
    engine: Engine = request.param
    url = request.getfixturevalue("opensearch_url" if engine is Engine.OPENSEARCH else "es_url")
    yield engine, url
    # Only this test's indices (its dataset folder name is unique), by name: Elasticsearch refuses
    # wildcard deletes by default.
    listed = httpx.get(f"{url}/_cat/indices/eval-{small_scifact.name}-*", params={"format": "json"}, timeout=30)
    for row in listed.json() if listed.is_success else []:
        httpx.delete(f"{url}/{row['index']}", timeout=30)


def pipeline_raw(engine: Engine, url: str, index: str, *, dense: bool) -> dict[str, object]:
    inputs = ["title", "text"]
    fields = [{"input": inputs, "endpoint": ".splade-tiny", "target": "sparse", "type": "rank_features"}]
    if dense:
        fields.append({"input": inputs, "endpoint": ".minilm-l6", "target": "dense", "type": "dense_vector"})
    return {
        "name": "scifact-search",
        "source": {"kafka": {"bootstrap_servers": "127.0.0.1:1", "topics": "unused", "group_id": "g"}},
        "fields": fields,
        "sink": {"engine": engine.value, "urls": url, "index": index},
    }


def pipeline_for(engine: Engine, url: str, index: str, *, dense: bool) -> PipelineConfig:
    raw = pipeline_raw(engine, url, index, dense=dense)
    config, problems = parse_pipeline_text(json.dumps(raw), "inline.yaml", env={})
    assert config is not None, problems
    return config


async def run_small_eval(folder: Path, cache: Path, engine: Engine, url: str) -> EvalReport:
    return await run_eval(EvalOptions(dataset=folder, engine=engine, url=url, cache_dir=cache, reindex=True))


async def test_eval_then_search(small_scifact: Path, cache_dir: Path, engine_url: tuple[Engine, str]) -> None:
    engine, url = engine_url
    report = await run_small_eval(small_scifact, cache_dir, engine, url)
    scores = {s.name: s for s in report.scores}
    assert report.docs == DOCS and report.queries == QUERIES
    # On 200 documents every query's relevant abstract is easy to find; methods clearly work.
    assert scores["bm25"].ndcg10 > 0.6 and scores["sparse"].ndcg10 > 0.5 and scores["dense"].ndcg10 > 0.5
    assert scores["bm25"].recall100 > 0.9
    assert any(s.name.startswith("bm25+sparse minmax") and s.ndcg10 > 0.6 for s in report.scores)
    assert report.dense_in_engine is True  # OpenSearch through the local stack's k-NN plugin
    count = httpx.get(f"{url}/{report.index.name}/_count", timeout=30).json()["count"]
    assert count == DOCS

    data = load_dataset(small_scifact)
    single = [q for q in data.queries if len(data.qrels[q]) == 1][:10]
    pipeline = pipeline_for(engine, url, report.index.name, dense=True)
    found = {"sparse": 0, Fusion.MINMAX: 0, Fusion.RRF: 0}
    async with open_service_encoder() as encoder:  # one model load for all the queries
        for qid in single:
            relevant = next(iter(data.qrels[qid]))
            plain = await search(pipeline, data.queries[qid], k=10, encoder=encoder)
            assert list(plain.methods) == [SPARSE] and len(plain.hits) == 10
            assert plain.query_terms is not None and plain.query_terms <= 32
            assert plain.hits[0].source["title"]  # hits carry the text fields, not the vectors
            assert "sparse" not in plain.hits[0].source
            found["sparse"] += relevant in [h.doc_id for h in plain.hits]
            for fusion in (Fusion.MINMAX, Fusion.RRF):
                hybrid = await search(pipeline, data.queries[qid], k=10, hybrid=True, fusion=fusion,
                                      encoder=encoder)
                assert list(hybrid.methods) == [BM25, SPARSE, DENSE]
                assert hybrid.fusion is fusion and len(hybrid.hits) == 10
                scores_desc = [h.score for h in hybrid.hits]
                assert scores_desc == sorted(scores_desc, reverse=True)
                # the fused list only holds documents some method returned
                returned = {h.doc_id for hits in hybrid.methods.values() for h in hits}
                assert {h.doc_id for h in hybrid.hits} <= returned
                found[fusion] += relevant in [h.doc_id for h in hybrid.hits]
    # Most queries find their one relevant abstract in the top 10 of 200, plain and fused.
    assert all(count >= 7 for count in found.values()), found

    # The same through the command line (in a thread: the command runs its own event loop).
    pipeline_file = small_scifact.parent / f"pipeline-{engine.value}.yaml"
    pipeline_file.write_text(json.dumps(pipeline_raw(engine, url, report.index.name, dense=False)))
    args = ["search", "--pipeline", str(pipeline_file), data.queries[single[0]], "--k", "5", "--hybrid",
            "--fusion", "rrf", "--weights", "bm25=1,sparse=2", "--json"]
    result = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)["hits"]
    assert len(hits) == 5 and all(set(h) == {"doc_id", "score", "source"} for h in hits)
    bad = await asyncio.to_thread(CliRunner().invoke, app, [*args[:-1], "--fusion", "borda"])
    assert bad.exit_code == 1 and "unknown fusion [borda]" in bad.output
