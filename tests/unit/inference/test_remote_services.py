"""Remote services against local servers that speak each provider's documented formats."""

import pytest

from sidecar.errors import RemoteServiceError
from sidecar.inference.service import InferenceService
from sidecar.inference.types import TaskType

from .remote_fakes import Recorded, fake_provider

OPENAI_429 = {
    "error": {
        "message": "Rate limit reached for requests",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}


def openai_answer(rec: Recorded) -> tuple[int, object, dict[str, str]]:
    data = [
        {"object": "embedding", "index": i, "embedding": [float(len(t)), 0.5]}
        for i, t in enumerate(rec.body["input"])
    ]
    return (
        200,
        {
            "object": "list",
            "data": list(reversed(data)),
            "model": rec.body["model"],
            "usage": {"prompt_tokens": 3, "total_tokens": 3},
        },
        {},
    )


async def test_openai_embeddings_retry_429_and_keep_input_order(remote: InferenceService) -> None:
    with fake_provider(openai_answer) as server:
        server.script.append((429, OPENAI_429, {"retry-after": "0"}))
        remote.registry.create(
            "oa",
            "text_embedding",
            {
                "service": "openai",
                "service_settings": {
                    "api_key": "sk-test",
                    "model_id": "text-embedding-3-small",
                    "url": f"{server.url}/v1/embeddings",
                    "dimensions": 2,
                },
                "task_settings": {"user": "u1"},
            },
        )
        out = await remote.infer("oa", ["a", "bbb"])
        assert [r.embedding for r in out.results] == [[1.0, 0.5], [3.0, 0.5]]
        assert len(server.requests) == 2  # one 429, one success
        sent = server.requests[-1]
        assert sent.path == "/v1/embeddings"
        assert sent.headers["authorization"] == "Bearer sk-test"
        assert sent.body == {
            "input": ["a", "bbb"],
            "model": "text-embedding-3-small",
            "encoding_format": "float",
            "dimensions": 2,
            "user": "u1",
        }
        assert await remote.dimensions("oa") == 2


async def test_openai_error_body_becomes_the_reason(remote: InferenceService) -> None:
    with fake_provider() as server:
        server.script.append(
            (
                401,
                {
                    "error": {
                        "message": "Incorrect API key provided: sk-bad.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
                {},
            )
        )
        remote.registry.create(
            "oa",
            "text_embedding",
            {
                "service": "openai",
                "service_settings": {"api_key": "sk-bad", "model_id": "m", "url": server.url},
            },
        )
        with pytest.raises(RemoteServiceError) as err:
            await remote.infer("oa", ["a"])
        assert err.value.status == 401 and not err.value.retriable
        assert err.value.reason == (
            "Received an unsuccessful status code for request from inference entity id [oa]"
            " status [401]. Error message: [Incorrect API key provided: sk-bad.]"
        )
        assert len(server.requests) == 1  # 4xx is not retried


async def test_persistent_429_is_retriable_after_retries(remote: InferenceService) -> None:
    with fake_provider(lambda rec: (429, OPENAI_429, {})) as server:
        remote.registry.create(
            "oa",
            "text_embedding",
            {"service": "openai", "service_settings": {"api_key": "k", "model_id": "m", "url": server.url}},
        )
        with pytest.raises(RemoteServiceError) as err:
            await remote.infer("oa", ["a"])
        assert err.value.status == 429 and err.value.retriable
        assert len(server.requests) == 3  # first try + 2 retries


async def test_cohere_embed_by_type_and_rerank(remote: InferenceService) -> None:
    def answer(rec: Recorded) -> tuple[int, object, dict[str, str]]:
        if rec.path == "/v1/embed":
            return (
                200,
                {
                    "id": "e1",
                    "embeddings": {"int8": [[1, -2], [3, 4]]},
                    "texts": rec.body["texts"],
                    "meta": {"api_version": {"version": "1"}},
                    "response_type": "embeddings_by_type",
                },
                {},
            )
        return (
            200,
            {
                "id": "r1",
                "results": [{"index": 1, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.1}],
                "meta": {},
            },
            {},
        )

    with fake_provider(answer) as server:
        remote.registry.create(
            "co",
            "text_embedding",
            {
                "service": "cohere",
                "service_settings": {
                    "api_key": "co-key",
                    "model_id": "embed-english-v3.0",
                    "url": server.url,
                    "embedding_type": "byte",
                },
            },
        )
        out = await remote.infer("co", ["x", "y"], input_type="search")
        assert out.embedding_type == "byte" and [r.embedding for r in out.results] == [[1, -2], [3, 4]]
        assert server.requests[0].body == {
            "texts": ["x", "y"],
            "embedding_types": ["int8"],
            "input_type": "search_query",
            "model": "embed-english-v3.0",
        }
        remote.registry.create(
            "cr",
            "rerank",
            {
                "service": "cohere",
                "service_settings": {
                    "api_key": "co-key",
                    "model_id": "rerank-english-v3.0",
                    "url": server.url,
                },
            },
        )
        ranked = await remote.infer("cr", ["doc a", "doc b"], query="q", top_n=2, return_documents=True)
        assert [(r.index, r.relevance_score, r.text) for r in ranked.results] == [
            (1, 0.9, "doc b"),
            (0, 0.1, "doc a"),
        ]
        assert server.requests[1].path == "/v1/rerank"
        assert server.requests[1].body["documents"] == ["doc a", "doc b"]


async def test_cohere_error_message(remote: InferenceService) -> None:
    with fake_provider(
        lambda rec: (400, {"message": "invalid request: texts must not be empty"}, {})
    ) as server:
        remote.registry.create(
            "co",
            "text_embedding",
            {"service": "cohere", "service_settings": {"api_key": "k", "url": server.url}},
        )
        with pytest.raises(
            RemoteServiceError, match=r"Error message: \[invalid request: texts must not be empty\]"
        ):
            await remote.infer("co", ["x"])


async def test_hugging_face_tei_sparse_maps_indices_to_tokens(remote: InferenceService) -> None:
    from sidecar.inference.services.hugging_face import load_vocab

    vocab = load_vocab(".splade_tiny")
    dog, dot = vocab.index("dog"), vocab.index(".")

    def answer(rec: Recorded) -> tuple[int, object, dict[str, str]]:
        return (
            200,
            [
                [{"index": dog, "value": 1.5}, {"index": dot, "value": 0.5}, {"index": 7, "value": -1.0}]
                for _ in rec.body["inputs"]
            ],
            {},
        )

    with fake_provider(answer) as server:
        server.script.append((503, {"error": "Model is loading", "error_type": "overloaded"}, {}))
        remote.registry.create(
            "tei",
            "sparse_embedding",
            {
                "service": "hugging_face",
                "service_settings": {
                    "url": f"{server.url}/embed_sparse",
                    "api_key": "hf_x",
                    "vocab": ".splade_tiny",
                    "batch_size": 2,
                },
            },
        )
        out = await remote.infer("tei", ["a", "b", "c"])
        assert [r.embedding for r in out.results] == [{"dog": 1.5, "__": 0.5}] * 3
        assert [r.body for r in server.requests] == [
            {"inputs": ["a", "b"]},
            {"inputs": ["a", "b"]},
            {"inputs": ["c"]},
        ]
        assert server.requests[0].headers["authorization"] == "Bearer hf_x"


async def test_hugging_face_inference_endpoint_formats(remote: InferenceService) -> None:
    def answer(rec: Recorded) -> tuple[int, object, dict[str, str]]:
        if "query" in rec.body:
            return 200, [{"index": 0, "score": 0.2}, {"index": 1, "score": 0.8}], {}
        if rec.path == "/sparse":
            return 200, [{"token.one": 2.0, "two": 1.0} for _ in rec.body["inputs"]], {}
        return 200, {"embeddings": [[0.1, 0.2] for _ in rec.body["inputs"]]}, {}

    with fake_provider(answer) as server:
        remote.registry.create(
            "hfd",
            "text_embedding",
            {"service": "hugging_face", "service_settings": {"url": f"{server.url}/dense"}},
        )
        remote.registry.create(
            "hfs",
            "sparse_embedding",
            {"service": "hugging_face", "service_settings": {"url": f"{server.url}/sparse"}},
        )
        remote.registry.create(
            "hfr", "rerank", {"service": "hugging_face", "service_settings": {"url": f"{server.url}/rerank"}}
        )
        assert (await remote.infer("hfd", ["a"])).results[0].embedding == [0.1, 0.2]
        assert (await remote.infer("hfs", ["a"])).results[0].embedding == {"token__one": 2.0, "two": 1.0}
        ranked = (await remote.infer("hfr", ["x", "y"], query="q")).results
        assert [r.index for r in ranked] == [1, 0]
        assert "authorization" not in server.requests[0].headers


async def test_elasticsearch_remote_inference(remote: InferenceService) -> None:
    def answer(rec: Recorded) -> tuple[int, object, dict[str, str]]:
        if rec.path.startswith("/_inference/sparse_embedding/"):
            return (
                200,
                {
                    "sparse_embedding": [
                        {"is_truncated": True, "embedding": {"port": 2.12, "a.b": 1.0}}
                        for _ in rec.body["input"]
                    ]
                },
                {},
            )
        if rec.path.startswith("/_inference/text_embedding/"):
            return 200, {"text_embedding": [{"embedding": [0.5, 0.25]} for _ in rec.body["input"]]}, {}
        return (
            404,
            {
                "error": {
                    "root_cause": [
                        {"type": "resource_not_found_exception", "reason": "Inference endpoint not found [x]"}
                    ],
                    "type": "resource_not_found_exception",
                    "reason": "Inference endpoint not found [x]",
                },
                "status": 404,
            },
            {},
        )

    with fake_provider(answer) as server:
        base = {
            "service": "elasticsearch",
            "service_settings": {"url": server.url, "model_id": "elser", "api_key": "es-key"},
        }
        remote.registry.create("es-sparse", "sparse_embedding", base)
        out = await remote.infer("es-sparse", ["hello"], task_type=TaskType.SPARSE_EMBEDDING)
        assert out.results[0].embedding == {"port": 2.12, "a__b": 1.0} and out.results[0].is_truncated
        assert server.requests[0].path == "/_inference/sparse_embedding/elser"
        assert server.requests[0].headers["authorization"] == "ApiKey es-key"
        assert "es-key" not in str(remote.registry.get("es-sparse").public_dict())
        remote.registry.create("es-dense", "text_embedding", base)
        assert (await remote.infer("es-dense", ["a"])).results[0].embedding == [0.5, 0.25]
        remote.registry.create("es-rerank", "rerank", base)
        with pytest.raises(
            RemoteServiceError, match=r"status \[404\]. Error message: \[Inference endpoint not found"
        ):
            await remote.infer("es-rerank", ["a"], query="q")


async def test_unreachable_service_is_a_retriable_error(remote: InferenceService) -> None:
    remote.registry.create(
        "gone",
        "text_embedding",
        {"service": "hugging_face", "service_settings": {"url": "http://127.0.0.1:9/embed"}},
    )
    with pytest.raises(RemoteServiceError, match="could not connect") as err:
        await remote.infer("gone", ["a"])
    assert err.value.retriable and err.value.status == 502
