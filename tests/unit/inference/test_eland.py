"""A sparse model in Eland's format (TorchScript + vocabulary JSON + trained-model config), traced
here from the packaged SPLADE the way Eland traces `text_expansion` models, serves an endpoint."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from sidecar.errors import StatusError
from sidecar.inference.models import resolve_model_path
from sidecar.inference.service import InferenceService
from sidecar.inference.services.eland import eland_files, is_eland_model

TEXTS = ["The sky above the port was the color of television", "tuned to a dead channel"]


def _trace_like_eland(target: Path) -> None:
    """Eland's `text_expansion` export: masked LM loaded with `torchscript=True`, traced on
    (input_ids, attention_mask, token_type_ids, position_ids), frozen, saved with its vocabulary."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    source = resolve_model_path(".splade_tiny")
    # Eland passes torchscript=True (tuple outputs); the transformers release installed here has no
    # such option, and return_dict=False gives the same tuple outputs.
    model = AutoModelForMaskedLM.from_pretrained(
        source, return_dict=False, attn_implementation="eager"
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(source)
    sample = tokenizer(
        "This is an example sentence.", padding="max_length", max_length=32, return_tensors="pt"
    )
    positions = torch.arange(sample["input_ids"].shape[1]).unsqueeze(0)
    inputs = (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"], positions)
    # torch deprecates TorchScript (Eland's format) and the tracer notes shape-derived constants;
    # the comparison with the untraced model below checks the trace generalises to other lengths.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, inputs)
        frozen = torch.jit.freeze(traced)
    # The traced module carries the untraced model's weights, unchanged.
    traced_weights = traced.state_dict()
    for name, tensor in model.state_dict().items():
        assert torch.equal(traced_weights[name], tensor), name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(frozen, str(target / "traced_pytorch_model.pt"))
    vocabulary = [t for t, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])]
    (target / "vocabulary.json").write_text(json.dumps({"vocabulary": vocabulary}))
    bert = {
        "do_lower_case": True,
        "with_special_tokens": True,
        "max_sequence_length": 512,
        "truncate": "first",
    }
    config = {
        "model_type": "pytorch",
        "inference_config": {"text_expansion": {"tokenization": {"bert": bert}}},
        "input": {"field_names": ["text_field"]},
    }
    (target / "config.json").write_text(json.dumps(config))


async def test_eland_traced_splade_serves_like_the_original(
    service: InferenceService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service.settings, "model_dirs", [tmp_path])  # local folders must be allowed
    model_dir = tmp_path / "splade-eland"
    model_dir.mkdir()
    _trace_like_eland(model_dir)
    assert eland_files(model_dir) is not None and is_eland_model(str(model_dir))

    body = {"service": "elasticsearch", "service_settings": {"model_id": str(model_dir)}}
    endpoint = await service.probe(service.registry.prepare_create("eland-splade", "sparse_embedding", body))
    service.registry.insert(endpoint)
    try:
        traced = (await service.infer("eland-splade", TEXTS)).results
        original = (await service.infer(".splade-tiny", TEXTS)).results
        for got, want in zip(traced, original, strict=True):
            assert got.embedding["port" if "port" in want.embedding else "channel"] > 0
            heaviest = sorted(want.embedding, key=want.embedding.__getitem__, reverse=True)[:10]
            assert set(heaviest) <= set(got.embedding)
            for token in heaviest:  # bf16 vocabulary projection on some CPUs: a small tolerance
                assert got.embedding[token] == pytest.approx(want.embedding[token], rel=0.03, abs=0.02)
    finally:
        service.registry.delete("eland-splade")


async def test_eland_model_of_another_task_is_refused_at_create(
    service: InferenceService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service.settings, "model_dirs", [tmp_path])
    model_dir = tmp_path / "dense-eland"
    model_dir.mkdir()
    (model_dir / "traced_pytorch_model.pt").write_bytes(b"not loaded")
    (model_dir / "vocabulary.json").write_text(json.dumps({"vocabulary": ["[PAD]"]}))
    config = {"inference_config": {"text_embedding": {"tokenization": {"bert": {}}}}}
    (model_dir / "config.json").write_text(json.dumps(config))
    body = {"service": "elasticsearch", "service_settings": {"model_id": str(model_dir)}}
    prepared = service.registry.prepare_create("eland-dense", "sparse_embedding", body)
    with pytest.raises(
        StatusError, match=r"is a \[text_embedding\] model; a \[sparse_embedding\] endpoint needs"
    ):
        await service.probe(prepared)


def _trace_sentence_transformer_like_eland(target: Path) -> None:
    """Eland's `text_embedding` export: the sentence-transformers model (pooling and normalisation
    included) wrapped to take Eland's four BERT inputs, traced, frozen and saved with its vocabulary."""
    import torch
    from sentence_transformers import SentenceTransformer

    source = resolve_model_path(".minilm_l6")
    st = SentenceTransformer(source, device="cpu")

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.st = st

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any, position_ids: Any) -> Any:
            features = {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "token_type_ids": token_type_ids,
            }
            return self.st(features)["sentence_embedding"]

    tokenizer = st.tokenizer
    sample = tokenizer("This is an example sentence.", padding="longest", return_tensors="pt")
    positions = torch.arange(sample["input_ids"].shape[1]).unsqueeze(0)
    inputs = (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"], positions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(Wrapper().eval(), inputs)
        torch.jit.save(torch.jit.freeze(traced), str(target / "traced_pytorch_model.pt"))
    vocabulary = [t for t, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])]
    (target / "vocabulary.json").write_text(json.dumps({"vocabulary": vocabulary}))
    bert = {
        "do_lower_case": True,
        "with_special_tokens": True,
        "max_sequence_length": 256,
        "truncate": "first",
    }
    config = {"inference_config": {"text_embedding": {"tokenization": {"bert": bert}, "embedding_size": 384}}}
    (target / "config.json").write_text(json.dumps(config))


async def test_eland_traced_sentence_transformer_serves_like_the_original(
    service: InferenceService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service.settings, "model_dirs", [tmp_path])
    model_dir = tmp_path / "minilm-eland"
    model_dir.mkdir()
    _trace_sentence_transformer_like_eland(model_dir)
    body = {"service": "elasticsearch", "service_settings": {"model_id": str(model_dir)}}
    endpoint = await service.probe(service.registry.prepare_create("eland-minilm", "text_embedding", body))
    assert endpoint.service_settings["dimensions"] == 384
    service.registry.insert(endpoint)
    try:
        traced = (await service.infer("eland-minilm", TEXTS)).results
        original = (await service.infer(".minilm-l6", TEXTS)).results
        for got, want in zip(traced, original, strict=True):
            assert got.embedding == pytest.approx(want.embedding, abs=1e-4)
    finally:
        service.registry.delete("eland-minilm")
