from pathlib import Path

import pytest

from sidecar.errors import (
    AlreadyExistsError,
    IllegalArgumentError,
    NotFoundError,
    ParseError,
    RequestValidationError,
    SettingsValidationError,
    StatusError,
)
from sidecar.inference.registry import EndpointRegistry
from sidecar.inference.registry_sqlite import SqliteEndpointStore
from sidecar.inference.types import TaskType
from sidecar.settings import Settings

OPENAI = {
    "service": "openai",
    "service_settings": {"api_key": "sk-secret", "model_id": "text-embedding-3-small"},
}


@pytest.fixture
def registry(tmp_path: Path) -> EndpointRegistry:
    return EndpointRegistry(tmp_path / "endpoints.sqlite3")


def test_builtins_exist_without_setup(registry: EndpointRegistry) -> None:
    sparse = registry.get(".splade-tiny")
    assert sparse.task_type == TaskType.SPARSE_EMBEDDING
    assert registry.get(".minilm-l6", "text_embedding").service == "elasticsearch"
    assert {e.inference_id for e in registry.list("rerank")} == {
        ".minilm-l6-rerank",
        ".rerank-v1-elasticsearch",
    }
    assert sparse.public_dict()["chunking_settings"] == {
        "strategy": "sentence",
        "max_chunk_size": 250,
        "sentence_overlap": 1,
    }


def test_create_get_persist_and_hide_secrets(tmp_path: Path, registry: EndpointRegistry) -> None:
    created = registry.create("my-openai", "text_embedding", dict(OPENAI))
    public = created.public_dict()
    assert public == {
        "inference_id": "my-openai",
        "task_type": "text_embedding",
        "service": "openai",
        "service_settings": {"model_id": "text-embedding-3-small"},
        "task_settings": {},
        "chunking_settings": {"strategy": "sentence", "max_chunk_size": 250, "sentence_overlap": 1},
    }
    assert "sk-secret" not in repr(created)
    reopened = EndpointRegistry(tmp_path / "endpoints.sqlite3")  # another process, same file
    again = reopened.get("my-openai")
    assert again.secrets == {"api_key": "sk-secret"}
    assert "sk-secret" not in str(again.public_dict())
    assert [e.inference_id for e in reopened.list("text_embedding")] == [
        ".minilm-l6",
        ".multilingual-e5-small-elasticsearch",
        "my-openai",
    ]


def test_task_type_from_body_and_conflicts(registry: EndpointRegistry) -> None:
    assert (
        registry.create("a", None, {**OPENAI, "task_type": "text_embedding"}).task_type
        == TaskType.TEXT_EMBEDDING
    )
    with pytest.raises(StatusError, match=r"conflicting task_type .* URL \[rerank\] and the request body"):
        registry.create("b", "rerank", {**OPENAI, "task_type": "text_embedding"})
    with pytest.raises(StatusError, match=r"missing required setting \[task_type\]"):
        registry.create("c", None, dict(OPENAI))
    with pytest.raises(StatusError, match=r"Unknown task_type \[nope\]"):
        registry.create("d", "nope", dict(OPENAI))


@pytest.mark.parametrize("bad_id", ["Upper", "-start", "end-", "_all", "sp ace", ".dot"])
def test_invalid_ids(registry: EndpointRegistry, bad_id: str) -> None:
    with pytest.raises(RequestValidationError, match=r"^Validation Failed: 1: Invalid inference_id"):
        registry.create(bad_id, "text_embedding", dict(OPENAI))


def test_already_exists_including_builtins(registry: EndpointRegistry) -> None:
    registry.create("x", "text_embedding", dict(OPENAI))
    with pytest.raises(AlreadyExistsError, match=r"Inference endpoint \[x\] already exists"):
        registry.create("x", "text_embedding", dict(OPENAI))


def test_setting_errors(registry: EndpointRegistry) -> None:
    with pytest.raises(StatusError, match=r"Unknown service \[nope\] for model \[e\]"):
        registry.create("e", "text_embedding", {"service": "nope", "service_settings": {}})
    with pytest.raises(SettingsValidationError, match=r"does not contain the required setting \[url\]"):
        registry.create("e", "sparse_embedding", {"service": "hugging_face", "service_settings": {}})
    with pytest.raises(StatusError, match=r"settings \{colour=red\} unknown to the \[openai\] service"):
        registry.create(
            "e",
            "text_embedding",
            {**OPENAI, "service_settings": {**OPENAI["service_settings"], "colour": "red"}},
        )
    with pytest.raises(StatusError, match=r"does not support task type \[sparse_embedding\]"):
        registry.create("e", "sparse_embedding", dict(OPENAI))
    with pytest.raises(ParseError, match=r"unknown field \[extra\]"):
        registry.create("e", "text_embedding", {**OPENAI, "extra": 1})
    with pytest.raises(StatusError, match=r"missing \[service_settings\]"):
        registry.create("e", "text_embedding", {"service": "openai"})
    with pytest.raises(SettingsValidationError, match=r"max_chunk_size"):
        registry.create("e", "text_embedding", {**OPENAI, "chunking_settings": {"strategy": "word"}})
    with pytest.raises(StatusError, match=r"Chunking settings are not supported"):
        registry.create(
            "e",
            "rerank",
            {
                "service": "cohere",
                "service_settings": {"api_key": "k"},
                "chunking_settings": {"strategy": "none"},
            },
        )


def test_get_errors(registry: EndpointRegistry) -> None:
    with pytest.raises(NotFoundError, match=r"^Inference endpoint not found \[missing\]$"):
        registry.get("missing")
    with pytest.raises(
        StatusError, match=r"requested type \[rerank\] does not match the model type \[sparse_embedding\]"
    ):
        registry.get(".splade-tiny", "rerank")


def test_delete_respects_pipelines_dry_run_and_force(registry: EndpointRegistry) -> None:
    registry.create("used", "text_embedding", dict(OPENAI))
    registry.set_pipeline_usage("orders", ["used"])
    assert registry.delete("used", dry_run=True) == {
        "acknowledged": False,
        "pipelines": ["orders"],
        "indexes": [],
    }
    with pytest.raises(StatusError, match=r"referenced by pipelines: \['orders'\]"):
        registry.delete("used")
    assert registry.delete("used", force=True)["acknowledged"] is True
    with pytest.raises(NotFoundError):
        registry.get("used")
    registry.create("free", "text_embedding", dict(OPENAI))
    registry.set_pipeline_usage("orders", [])
    assert registry.delete("free") == {"acknowledged": True, "pipelines": [], "indexes": []}
    with pytest.raises(StatusError, match="reserved"):
        registry.delete(".splade-tiny")


def test_update_merges_and_keeps_secrets(registry: EndpointRegistry) -> None:
    registry.create("u", "text_embedding", dict(OPENAI))
    updated = registry.update(
        "u", None, {"service_settings": {"dimensions": 256}, "task_settings": {"user": "me"}}
    )
    assert updated.service_settings == {"model_id": "text-embedding-3-small", "dimensions": 256}
    assert updated.secrets == {"api_key": "sk-secret"}
    assert registry.get("u").task_settings == {"user": "me"}
    rotated = registry.update("u", "text_embedding", {"service_settings": {"api_key": "sk-new"}})
    assert rotated.secrets == {"api_key": "sk-new"}
    with pytest.raises(StatusError, match=r"cannot be updated, .* again \{service=cohere\}"):
        registry.update("u", None, {"service": "cohere"})
    with pytest.raises(StatusError, match="reserved"):
        registry.update(".minilm-l6", None, {"task_settings": {}})


def test_from_settings_picks_the_store(tmp_path: Path) -> None:
    default = EndpointRegistry.from_settings(
        Settings(registry_path=tmp_path / "r.sqlite3", registry_index=None)
    )
    assert isinstance(default.store, SqliteEndpointStore)
    assert default.store.path == tmp_path / "r.sqlite3"
    default.ping()
    with pytest.raises(IllegalArgumentError, match=r"registry_index \[endpoints\] needs registry_engine_url"):
        EndpointRegistry.from_settings(Settings(registry_index="endpoints", registry_engine_url=None))


def test_update_of_an_endpoint_deleted_meanwhile_is_not_found(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.sqlite3"
    first, second = EndpointRegistry(path), EndpointRegistry(path)
    first.create("gone", "text_embedding", dict(OPENAI))
    second.delete("gone")
    with pytest.raises(NotFoundError, match=r"^Inference endpoint not found \[gone\]$"):
        first.store.update("gone", lambda e: e)
    with pytest.raises(NotFoundError):
        first.store.remove("gone")
