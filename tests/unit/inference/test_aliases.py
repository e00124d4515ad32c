"""Elasticsearch's built-in model ids: the alias table, the `elser` service, preconfigured endpoints,
E5 prefixes and the probe at create time."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sidecar.errors import RequestValidationError, StatusError
from sidecar.inference.aliases import STAND_INS, ModelAliases
from sidecar.inference.registry import BUILTIN_ENDPOINTS, EndpointRegistry, creation_warnings
from sidecar.inference.service import InferenceService
from sidecar.inference.types import InputType, TaskType
from sidecar.settings import Settings

ELSER_DEPRECATION = (
    "The [elser] service is deprecated and will be removed in a future release. Use the "
    "[elasticsearch] service instead, with [model_id] set to [.elser_model_2] in the [service_settings]"
)


def test_embedded_stand_ins_and_operator_overrides() -> None:
    aliases = ModelAliases()
    assert aliases.resolve(".elser_model_2_linux-x86_64") == ".splade_tiny"
    assert aliases.resolve(".multilingual-e5-small") == ".minilm_l6"
    assert aliases.resolve(".rerank-v1") == ".minilm_l6"
    assert aliases.resolve("/models/mine") == "/models/mine"  # not an alias
    assert "stand-in [.splade_tiny]" in (aliases.stand_in_warning(".elser_model_1") or "")
    assert not aliases.uses_e5_prefixes(".multilingual-e5-small")  # MiniLM never saw the prefixes

    mine = ModelAliases({".multilingual-e5-small": "intfloat/multilingual-e5-small", "my-model": "/m"})
    assert mine.resolve(".multilingual-e5-small") == "intfloat/multilingual-e5-small"
    assert mine.stand_in_warning(".multilingual-e5-small") is None
    assert mine.uses_e5_prefixes(".multilingual-e5-small")
    assert mine.resolve("my-model") == "/m"
    assert set(STAND_INS) <= {line.split(" ")[0] for line in mine.describe()}


def test_model_aliases_setting_reads_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIDECAR_MODEL_ALIASES", '{".rerank-v1": "/srv/models/reranker"}')
    assert Settings().model_aliases == {".rerank-v1": "/srv/models/reranker"}


def test_elser_service_is_stored_as_elasticsearch(tmp_path: Path) -> None:
    registry = EndpointRegistry(tmp_path / "r.sqlite3")
    body = {"service": "elser", "service_settings": {"num_allocations": 1, "num_threads": 1}}
    created = registry.create("my-elser-model", "sparse_embedding", body)
    assert created.service == "elasticsearch"
    assert created.service_settings == {"num_allocations": 1, "num_threads": 1, "model_id": ".elser_model_2"}
    assert creation_warnings(body)[-1] == ELSER_DEPRECATION
    assert creation_warnings(body)[0].startswith("Putting elasticsearch service inference endpoints")
    with_model = {**body, "service_settings": {"model_id": ".elser_model_2"}}
    assert creation_warnings(with_model) == [ELSER_DEPRECATION]
    assert creation_warnings({"service": "elasticsearch", "service_settings": {}}) == []
    with pytest.raises(StatusError, match=r"The \[elser\] service does not support task type \[rerank\]"):
        registry.create("elser-rerank", "rerank", body)


def test_preconfigured_endpoints_are_reserved(tmp_path: Path) -> None:
    registry = EndpointRegistry(tmp_path / "r.sqlite3")
    listed = {e.inference_id: e for e in registry.list()}
    for inference_id, task in (
        (".elser-2-elasticsearch", TaskType.SPARSE_EMBEDDING),
        (".multilingual-e5-small-elasticsearch", TaskType.TEXT_EMBEDDING),
        (".rerank-v1-elasticsearch", TaskType.RERANK),
    ):
        assert listed[inference_id].task_type == task
        with pytest.raises(StatusError, match="Cannot delete a reserved inference endpoint"):
            registry.delete(inference_id)
    assert BUILTIN_ENDPOINTS[".rerank-v1-elasticsearch"].task_settings == {"return_documents": True}
    e5 = BUILTIN_ENDPOINTS[".multilingual-e5-small-elasticsearch"].service_settings
    assert (e5["dimensions"], e5["similarity"]) == (384, "cosine")
    with pytest.raises(RequestValidationError, match="Invalid inference_id"):  # ids with a `.` are reserved
        registry.create(
            ".elser-2-elasticsearch", "sparse_embedding", {"service": "elser", "service_settings": {}}
        )


async def test_built_in_ids_serve_through_the_stand_ins(service: InferenceService) -> None:
    sky = "The sky above the port was the color of television tuned to a dead channel."
    sparse = await service.infer(".elser-2-elasticsearch", [sky])
    tokens = sparse.results[0].embedding
    assert tokens["port"] > 0 and tokens["sky"] > 0
    dense = await service.infer(".multilingual-e5-small-elasticsearch", [sky], input_type=InputType.INGEST)
    assert len(dense.results[0].embedding) == 384
    docs = ["Paris is the capital of France.", "The port was full of ships under a grey sky."]
    ranked = await service.infer(".rerank-v1-elasticsearch", docs, query="ships in the port")
    assert [r.index for r in ranked.results] == [1, 0]
    assert ranked.results[0].text == docs[1]  # Elasticsearch's rerank models return documents by default
    warnings = service.endpoint_warnings(service.registry.get(".rerank-v1-elasticsearch"))
    assert warnings and "[.rerank-v1] is served by the stand-in [.minilm_l6]" in warnings[0]
    assert service.endpoint_warnings(service.registry.get(".minilm-l6")) == []


async def test_rerank_task_settings_request_wins(service: InferenceService) -> None:
    docs = ["a grey sky", "a port with ships", "tuned to a dead channel"]
    stored = await service.infer(".rerank-v1-elasticsearch", docs, query="port")
    assert len(stored.results) == 3 and all(r.text is not None for r in stored.results)
    per_request = await service.infer(
        ".rerank-v1-elasticsearch",
        docs,
        query="port",
        task_settings={"return_documents": False, "top_n": 1},
    )
    assert [(r.index, r.text) for r in per_request.results] == [(1, None)]
    fields_win = await service.infer(
        ".rerank-v1-elasticsearch",
        docs,
        query="port",
        task_settings={"top_n": 1},
        top_n=2,
        return_documents=True,
    )
    assert len(fields_win.results) == 2 and fields_win.results[0].text == docs[1]


async def test_e5_prefixes_when_the_alias_names_a_real_e5_model(
    tmp_path: Path, service: InferenceService
) -> None:
    # The operator maps the E5 id to a model (here the packaged MiniLM, standing for a real E5):
    # Elasticsearch's `query: ` / `passage: ` prefixes are then added per input type.
    settings = Settings(
        registry_path=tmp_path / "r.sqlite3",
        device="cpu",
        model_aliases={".multilingual-e5-small": ".minilm_l6"},
    )
    e5 = InferenceService.from_settings(settings)
    e5.pool = service.pool  # share the loaded MiniLM
    try:
        text = "lighthouse keepers"
        for input_type, prefix in ((InputType.SEARCH, "query: "), (InputType.INGEST, "passage: ")):
            got = await e5.infer(".multilingual-e5-small-elasticsearch", [text], input_type=input_type)
            want = await service.infer(".minilm-l6", [prefix + text])
            assert got.results[0].embedding == pytest.approx(want.results[0].embedding, abs=1e-6)
        plain = await e5.infer(
            ".multilingual-e5-small-elasticsearch", [text], input_type=InputType.CLUSTERING
        )
        want_plain = await service.infer(".minilm-l6", [text])
        assert plain.results[0].embedding == pytest.approx(want_plain.results[0].embedding, abs=1e-6)
        assert e5.endpoint_warnings(e5.registry.get(".multilingual-e5-small-elasticsearch")) == []
    finally:
        e5.registry.close()


async def test_probe_on_create_fills_dimensions_and_refuses_unloadable_models(
    service: InferenceService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service.settings, "model_dirs", [tmp_path])  # local folders must be allowed
    registry = service.registry
    dense = registry.prepare_create(
        "probe-e5",
        "text_embedding",
        {"service": "elasticsearch", "service_settings": {"model_id": ".multilingual-e5-small"}},
    )
    probed = await service.probe(dense)
    assert (probed.service_settings["dimensions"], probed.service_settings["similarity"]) == (384, "cosine")
    assert probed.service_settings["model_id"] == ".multilingual-e5-small"  # the id the user gave

    wrong = registry.prepare_create(
        "probe-wrong",
        "text_embedding",
        {"service": "elasticsearch", "service_settings": {"model_id": ".minilm_l6", "dimensions": 768}},
    )
    with pytest.raises(StatusError, match=r"embeddings size \[384\] does not match .* \[768\]"):
        await service.probe(wrong)

    empty = tmp_path / "not-a-model"  # a directory without weights
    empty.mkdir()
    missing = registry.prepare_create(
        "probe-missing",
        "sparse_embedding",
        {"service": "elasticsearch", "service_settings": {"model_id": str(empty)}},
    )
    with pytest.raises(StatusError, match=r"Could not load model \[.*not-a-model\]") as caught:
        await service.probe(missing)
    assert caught.value.status == 400


async def test_startup_log_names_the_model_behind_each_alias(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sidecar.inference.aliases")
    settings = Settings(
        registry_path=tmp_path / "r.sqlite3", model_aliases={".rerank-v1": "/models/reranker"}
    )
    svc = InferenceService.from_settings(settings)
    try:
        await svc.start(preload=[])
    finally:
        await svc.close()
    assert ".elser_model_2 -> .splade_tiny (embedded stand-in)" in caplog.text
    assert ".multilingual-e5-small -> .minilm_l6 (embedded stand-in)" in caplog.text
    assert ".rerank-v1 -> /models/reranker\n" in caplog.text  # the operator's model: no stand-in
