"""Rerank `task_settings` (`top_n`, `return_documents`) for remote services, as Elasticsearch
applies them: stored with the endpoint, overridden by the request's task_settings, which the
request's own `top_n`/`return_documents` fields override in turn."""

from sidecar.inference.service import InferenceService

from .remote_fakes import Recorded, fake_provider

DOCS = ["doc a", "doc b", "doc c"]


def tei_rerank(rec: Recorded) -> tuple[int, object, dict[str, str]]:
    """text-embeddings-inference `/rerank`: every text scored, best first."""
    scores = {0: 0.1, 1: 0.9, 2: 0.5}
    return 200, [{"index": i, "score": s} for i, s in sorted(scores.items(), key=lambda kv: -kv[1])], {}


def cohere_rerank(rec: Recorded) -> tuple[int, object, dict[str, str]]:
    ranked = [{"index": 1, "relevance_score": 0.9}, {"index": 2, "relevance_score": 0.5}]
    ranked.append({"index": 0, "relevance_score": 0.1})
    return 200, {"id": "r1", "results": ranked[: rec.body.get("top_n", 3)], "meta": {}}, {}


async def test_hugging_face_rerank_task_settings(remote: InferenceService) -> None:
    with fake_provider(tei_rerank) as server:
        remote.registry.create(
            "hf-rerank",
            "rerank",
            {
                "service": "hugging_face",
                "service_settings": {"url": f"{server.url}/rerank"},
                "task_settings": {"top_n": 2, "return_documents": True},
            },
        )
        stored = (await remote.infer("hf-rerank", DOCS, query="q")).results
        assert [(r.index, r.text) for r in stored] == [(1, "doc b"), (2, "doc c")]
        assert server.requests[-1].body["return_text"] is True

        per_request = await remote.infer(
            "hf-rerank", DOCS, query="q", task_settings={"top_n": 1, "return_documents": False}
        )
        assert [(r.index, r.text) for r in per_request.results] == [(1, None)]

        fields_win = await remote.infer(
            "hf-rerank", DOCS, query="q", task_settings={"top_n": 1}, top_n=3, return_documents=False
        )
        assert [(r.index, r.text) for r in fields_win.results] == [(1, None), (2, None), (0, None)]


async def test_cohere_rerank_task_settings(remote: InferenceService) -> None:
    with fake_provider(cohere_rerank) as server:
        remote.registry.create(
            "co-rerank",
            "rerank",
            {
                "service": "cohere",
                "service_settings": {"api_key": "co-key", "url": server.url},
                "task_settings": {"top_n": 1},
            },
        )
        stored = (await remote.infer("co-rerank", DOCS, query="q")).results
        assert [(r.index, r.text) for r in stored] == [(1, None)]  # Cohere's default: no documents
        assert server.requests[-1].body["top_n"] == 1

        per_request = await remote.infer(
            "co-rerank", DOCS, query="q", task_settings={"top_n": 2, "return_documents": True}
        )
        assert [(r.index, r.text) for r in per_request.results] == [(1, "doc b"), (2, "doc c")]
        assert server.requests[-1].body["top_n"] == 2
        assert server.requests[-1].body["return_documents"] is True
