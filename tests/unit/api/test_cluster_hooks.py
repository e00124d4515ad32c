"""The routes an Elasticsearch cluster calls, driven by the files in pipelines/elasticsearch/.

Each test builds the request Elasticsearch would send from a shipped `PUT _inference` body and reads
the answer the way Elasticsearch's parsers do (`hugging_face`: a list of token maps or of vectors;
`custom`: the configured JSON paths).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from syrupy.assertion import SnapshotAssertion

from tests.unit.api.conftest import DENSE_ID, RERANK_ID, SPARSE_ID, ClientFactory, rounded, top_tokens

SHIPPED = Path(__file__).resolve().parents[3] / "pipelines" / "elasticsearch"
API_KEY = "es-cluster-key"
TEXTS = ["The sky above the port", "was the color of television"]


def shipped(name: str, endpoint: str) -> dict[str, Any]:
    text = (SHIPPED / name).read_text(encoding="utf-8")
    text = text.replace("{{SIDECAR_URL}}", "http://sidecar").replace("{{SIDECAR_API_KEY}}", API_KEY)
    body: dict[str, Any] = json.loads(text)
    settings = body["service_settings"]
    # Point the shipped definition at an endpoint of the service under test.
    settings["url"] = re.sub(r"/[^/]+$", f"/{endpoint}", settings["url"])
    return body


def json_path(document: Any, path: str) -> Any:
    """The subset of JSONPath the `custom` service uses: `$.a[*].b[*].c`, each `[*]` a list level."""

    def walk(value: Any, parts: list[str]) -> Any:
        if not parts:
            return value
        head, rest = parts[0], parts[1:]
        child = value[head.removesuffix("[*]")]
        return [walk(item, rest) for item in child] if head.endswith("[*]") else walk(child, rest)

    return walk(document, path.removeprefix("$.").split("."))


async def call_hugging_face(client: httpx.AsyncClient, definition: dict[str, Any], texts: list[str]) -> Any:
    settings = definition["service_settings"]
    response = await client.post(
        urlsplit(settings["url"]).path,
        json={"inputs": texts},
        headers={"authorization": f"Bearer {settings['api_key']}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def call_custom(client: httpx.AsyncClient, definition: dict[str, Any], texts: list[str]) -> Any:
    settings = definition["service_settings"]
    secrets = settings["secret_parameters"]
    headers = {
        k: re.sub(r"\$\{(\w+)\}", lambda m: secrets[m.group(1)], v) for k, v in settings["headers"].items()
    }
    body = settings["request"].replace("${input}", json.dumps(texts))
    response = await client.post(urlsplit(settings["url"]).path, content=body.encode(), headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_hugging_face_sparse(client: httpx.AsyncClient, snapshot: SnapshotAssertion) -> None:
    definition = shipped("inference-sparse-hugging-face.json", SPARSE_ID)
    answer = await call_hugging_face(client, definition, TEXTS)
    assert isinstance(answer, list) and len(answer) == len(TEXTS)
    for entry in answer:
        assert entry and all(isinstance(k, str) and isinstance(v, float) and v > 0 for k, v in entry.items())
    same = await client.post(f"/_inference/{SPARSE_ID}", json={"input": TEXTS})
    assert [e["embedding"] for e in same.json()["sparse_embedding"]] == answer
    assert [top_tokens(entry) for entry in answer] == snapshot


async def test_hugging_face_dense(client: httpx.AsyncClient, snapshot: SnapshotAssertion) -> None:
    definition = shipped("inference-dense-hugging-face.json", DENSE_ID)
    answer = await call_hugging_face(client, definition, TEXTS)
    assert [len(vector) for vector in answer] == [384, 384]
    assert all(isinstance(v, float) for vector in answer for v in vector)
    norms = [math.sqrt(sum(v * v for v in vector)) for vector in answer]
    cosine = sum(a * b for a, b in zip(*answer, strict=True)) / (norms[0] * norms[1])
    assert {"norms": rounded(norms), "cosine": round(cosine, 1)} == snapshot


async def test_hugging_face_accepts_a_single_string(client: httpx.AsyncClient) -> None:
    definition = shipped("inference-sparse-hugging-face.json", SPARSE_ID)
    assert len(await call_hugging_face(client, definition, TEXTS[0])) == 1  # type: ignore[arg-type]


async def test_custom_sparse_json_paths(client: httpx.AsyncClient, snapshot: SnapshotAssertion) -> None:
    definition = shipped("inference-sparse-custom.json", SPARSE_ID)
    answer = await call_custom(client, definition, TEXTS)
    parser = definition["service_settings"]["response"]["json_parser"]
    tokens, weights = json_path(answer, parser["token_path"]), json_path(answer, parser["weight_path"])
    assert len(tokens) == len(weights) == len(TEXTS)
    for token_list, weight_list in zip(tokens, weights, strict=True):
        assert len(token_list) == len(weight_list) > 0
        assert all(isinstance(t, str) for t in token_list) and all(w > 0 for w in weight_list)
    first = answer["sparse_embedding"][0]
    assert first["is_truncated"] is False
    assert top_tokens({e["token"]: e["weight"] for e in first["embedding"]}) == snapshot


async def test_custom_dense_json_paths(client: httpx.AsyncClient) -> None:
    definition = shipped("inference-dense-custom.json", DENSE_ID)
    answer = await call_custom(client, definition, TEXTS)
    vectors = json_path(answer, definition["service_settings"]["response"]["json_parser"]["text_embeddings"])
    assert len(vectors) == len(TEXTS) and all(isinstance(v, float) for vector in vectors for v in vector)


async def test_hooks_take_the_key_elasticsearch_sends(open_client: ClientFactory) -> None:
    path = f"/_sidecar/hugging_face/{SPARSE_ID}"
    async with open_client(api_keys=[API_KEY]) as secured:
        without = await secured.post(path, json={"inputs": ["x"]})
        wrong = await secured.post(path, json={"inputs": ["x"]}, headers={"authorization": "Bearer nope"})
        # An empty request passes authentication and fails validation: no model needs to load.
        right = await secured.post(path, json={"inputs": []}, headers={"authorization": f"Bearer {API_KEY}"})
    assert without.status_code == wrong.status_code == 401
    assert without.json()["error"]["type"] == "security_exception"
    assert right.status_code == 400
    assert right.json()["error"]["type"] == "action_request_validation_exception"


@pytest.mark.parametrize(
    ("path", "body", "status", "es_type"),
    [
        (f"/_sidecar/hugging_face/{RERANK_ID}", {"inputs": ["x"]}, 400, "status_exception"),
        ("/_sidecar/hugging_face/missing", {"inputs": ["x"]}, 404, "resource_not_found_exception"),
        (f"/_sidecar/hugging_face/{SPARSE_ID}", {"inputs": []}, 400, "action_request_validation_exception"),
        (f"/_sidecar/hugging_face/{SPARSE_ID}", {"input": ["x"]}, 400, "x_content_parse_exception"),
        (
            f"/_sidecar/custom/{SPARSE_ID}",
            {"input": "x", "input_type": "up"},
            400,
            "x_content_parse_exception",
        ),
    ],
)
async def test_hook_errors(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], status: int, es_type: str
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == status
    assert response.json()["error"]["type"] == es_type


def test_shipped_files_agree_with_each_other() -> None:
    setup = (SHIPPED / "setup.sh").read_text(encoding="utf-8")
    pipeline = json.loads((SHIPPED / "ingest-pipeline.json").read_text(encoding="utf-8"))
    mappings = json.loads((SHIPPED / "index-mappings.json").read_text(encoding="utf-8"))
    model_id = pipeline["processors"][0]["inference"]["model_id"]
    assert f"/_inference/sparse_embedding/{model_id} " in setup
    pipeline_name = mappings["settings"]["index.default_pipeline"]
    assert f"/_ingest/pipeline/{pipeline_name} " in setup
    output_field = pipeline["processors"][0]["inference"]["input_output"][0]["output_field"]
    assert mappings["mappings"]["properties"][output_field]["type"] == "sparse_vector"
