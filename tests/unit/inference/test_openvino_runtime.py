"""The OpenVINO CPU runtime against the torch path, with the real packaged tiny models: same
weights within `rank_features` precision, same dense vectors, graph cached and reused, and
`SIDECAR_CPU_RUNTIME` choosing (and falling back to) torch."""

import json
import logging
import os
import shutil
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sidecar.errors import ModelNotReadyError
from sidecar.inference.batching import Encoded, call_here
from sidecar.inference.executor import build_engine
from sidecar.inference.models import model_fingerprint, pad_batch, resolve_model_path
from sidecar.inference.services import openvino_runtime as ovr
from sidecar.inference.services.dense import DenseBackend
from sidecar.inference.services.splade import SpladeBackend
from sidecar.inference.torch_thread import run_on_torch_thread
from sidecar.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
PRECISION = 2.0**-8  # rank_features keeps 9 significant bits


def scifact(limit: int) -> list[str]:
    texts = []
    with (ROOT / "datasets" / "scifact" / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            texts.append(f"{doc['title']} {doc['text']}")
            if len(texts) == limit:
                break
    return texts


TEXTS = [
    *scifact(30),  # abstracts, several cut at 512 tokens
    "",
    "Fox.",
    "A fox jumps over the lazy dog.",
    "Vitamin D deficiency and bone density in adults. " * 80,  # far past 512 tokens
    "ünïcödé, émojis 🦊 and CJK 漢字 in one line",
]


def no_torch() -> Any:
    raise AssertionError("the torch model was loaded although the graph is cached")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("openvino-cache")


@pytest.fixture(scope="module")
def torch_sparse() -> SpladeBackend:
    return SpladeBackend(".splade_tiny", device="cpu", max_length=512, cpu_bf16=False)


@pytest.fixture(scope="module")
def torch_dense() -> DenseBackend:
    return DenseBackend(".minilm_l6", device="cpu", max_length=256)


@pytest.fixture(scope="module")
def ov_sparse(cache: Path, torch_sparse: SpladeBackend) -> ovr.OpenVinoSparseBackend:
    backend = ovr.load_openvino(
        "sparse", ".splade_tiny", lambda: torch_sparse, max_length=512, cache_dir=cache
    )
    assert isinstance(backend, ovr.OpenVinoSparseBackend)
    return backend


@pytest.fixture(scope="module")
def ov_dense(cache: Path, torch_dense: DenseBackend) -> ovr.OpenVinoDenseBackend:
    backend = ovr.load_openvino("dense", ".minilm_l6", lambda: torch_dense, max_length=256, cache_dir=cache)
    assert isinstance(backend, ovr.OpenVinoDenseBackend)
    return backend


def test_sparse_weights_match_torch_within_rank_features_precision(
    ov_sparse: ovr.OpenVinoSparseBackend, torch_sparse: SpladeBackend
) -> None:
    encoded = ov_sparse.tokenize(TEXTS)
    assert [e.ids for e in encoded] == [e.ids for e in torch_sparse.tokenize(TEXTS)]
    assert sum(e.truncated for e in encoded) >= 2  # long abstracts and the repeated sentence
    got = ov_sparse.decode(encoded, ov_sparse.infer(encoded))
    want = torch_sparse.forward(encoded)
    for text, g, w in zip(TEXTS, got, want, strict=True):
        assert g.is_truncated == w.is_truncated
        floor = PRECISION * max(w.embedding.values(), default=0.0)
        # The same tokens, except ones too weak to matter next to the text's strongest.
        assert {t for t, v in w.embedding.items() if v >= floor} <= set(g.embedding), text[:40]
        assert all(v < floor for t, v in g.embedding.items() if t not in w.embedding), text[:40]
        for token, value in w.embedding.items():
            if value >= floor:
                assert abs(g.embedding[token] - value) <= PRECISION * value, (text[:40], token)


def test_sparse_graph_pools_padded_batches_like_torch(
    ov_sparse: ovr.OpenVinoSparseBackend, torch_sparse: SpladeBackend
) -> None:
    """The graph itself also takes padded batches (padding rows copy the first token's state)."""
    encoded = torch_sparse.tokenize([*TEXTS[:8], "", "Fox."])
    ids, mask = pad_batch(encoded, "cpu")
    got = ov_sparse.compiled({"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    want = torch_sparse.pooled(encoded).numpy()
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= PRECISION * want.max()


def test_dense_vectors_match_torch(ov_dense: ovr.OpenVinoDenseBackend, torch_dense: DenseBackend) -> None:
    encoded = ov_dense.tokenize(TEXTS)
    got = ov_dense.decode(encoded, ov_dense.infer(encoded))
    want = torch_dense.embed(encoded).numpy()
    assert ov_dense.dimensions == torch_dense.dimensions == 384
    for g, w, enc in zip(got, want, encoded, strict=True):
        vector = np.asarray(g.embedding)
        assert g.is_truncated == enc.truncated
        assert abs(np.linalg.norm(vector) - 1) < 1e-5
        assert float(vector @ w) >= 0.9999


def test_texts_spread_over_several_requests_come_back_in_order(
    cache: Path, ov_sparse: ovr.OpenVinoSparseBackend
) -> None:
    """With several streams each request's inputs are written only once its last text is read."""
    entry = ovr.cache_entry("sparse", ".splade_tiny", cache)
    assert entry is not None
    found = ovr.read_entry(entry)
    assert found is not None
    graph, meta = found
    config = {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": "2", "INFERENCE_PRECISION_HINT": "f32"}
    streams = ovr.OpenVinoSparseBackend(
        "s", ovr.core().compile_model(graph, "CPU", config), ov_sparse.tokenizer, 512, meta
    )
    assert len(streams._requests) >= 2
    encoded = ov_sparse.tokenize(TEXTS)
    want = ov_sparse.infer(encoded)
    for batch in (encoded, encoded[::-1], encoded[:3], encoded[:1]):
        got = streams.infer(batch)
        expected = want[[encoded.index(e) for e in batch]]
        assert np.allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_texts_of_one_length_share_a_request_and_answer_as_alone(ov_sparse: ovr.OpenVinoSparseBackend) -> None:
    """Titles in a batch: equal-length ones run as one unpadded request each run, in input order,
    with the weights each would get alone."""
    corpus = (ROOT / "datasets" / "scifact" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    titles = [json.loads(line)["title"] for line in corpus[:96]]
    encoded = ov_sparse.tokenize([*titles, *TEXTS])
    groups = ovr.length_groups(encoded, ovr.GROUP_TOKENS)
    assert sorted(i for g in groups for i in g) == list(range(len(encoded)))
    assert sum(len(g) for g in groups if len(g) > 1) > len(titles) // 2  # most titles share a request
    for group in groups:
        assert len({len(encoded[i].ids) for i in group}) == 1
        assert len(group) == 1 or len(group) * len(encoded[group[0]].ids) <= ovr.GROUP_TOKENS
        assert len(group) & (len(group) - 1) == 0  # a power of two: few shapes per length
    got = ov_sparse.infer(encoded)
    alone = np.stack([ov_sparse.infer([e])[0] for e in encoded])
    assert got.shape == alone.shape
    assert np.allclose(got, alone, rtol=1e-5, atol=1e-6)


def test_second_load_reads_the_cached_graph_without_exporting(
    cache: Path, ov_sparse: ovr.OpenVinoSparseBackend, ov_dense: ovr.OpenVinoDenseBackend
) -> None:
    entries = sorted(cache.iterdir())
    assert [e.name.split("-")[0] for e in entries] == ["dense", "sparse"]
    mtimes = {e: (e / "model.xml").stat().st_mtime_ns for e in entries}
    exported = ovr.exports
    sparse = ovr.load_openvino("sparse", ".splade_tiny", no_torch, max_length=512, cache_dir=cache)
    dense = ovr.load_openvino("dense", ".minilm_l6", no_torch, max_length=256, cache_dir=cache)
    assert ovr.exports == exported
    assert {e: (e / "model.xml").stat().st_mtime_ns for e in sorted(cache.iterdir())} == mtimes
    assert sparse.vocab == ov_sparse.vocab and dense.dimensions == ov_dense.dimensions
    encoded = sparse.tokenize(TEXTS[:3])
    assert sparse.decode(encoded, sparse.infer(encoded)) == ov_sparse.decode(
        encoded, ov_sparse.infer(encoded)
    )


def test_a_damaged_cache_entry_is_exported_again(
    tmp_path: Path, cache: Path, ov_dense: ovr.OpenVinoDenseBackend, torch_dense: DenseBackend
) -> None:
    shutil.copytree(cache, tmp_path, dirs_exist_ok=True)
    (entry,) = tmp_path.glob("dense-*")
    (entry / "model.xml").write_text("<not a graph", encoding="utf-8")
    exported = ovr.exports
    again = ovr.load_openvino("dense", ".minilm_l6", lambda: torch_dense, max_length=256, cache_dir=tmp_path)
    assert ovr.exports == exported + 1
    assert (entry / "model.xml").read_text(encoding="utf-8").startswith("<?xml")
    encoded = again.tokenize(["a text"])
    assert np.allclose(again.infer(encoded), ov_dense.infer(encoded), atol=1e-6)


def test_model_files_changing_changes_the_cache_key(tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(resolve_model_path(".splade_tiny"), model)
    before = model_fingerprint(str(model))
    os.utime(model / "config.json", ns=(1, 1))
    assert before is not None and model_fingerprint(str(model)) != before
    assert ovr.cache_entry("sparse", str(model), tmp_path) != ovr.cache_entry("dense", str(model), tmp_path)


def test_openvino_reports_no_usage_telemetry(ov_sparse: ovr.OpenVinoSparseBackend) -> None:
    """Without the block, importing openvino (and converting) sends events to Google Analytics."""
    import sys

    assert sys.modules["openvino_telemetry"] is None
    for name in ("openvino.tools.ovc.telemetry_utils", "openvino.tools.ovc.convert_impl"):
        assert sys.modules[name].tm.__name__ == "openvino.tools.ovc.telemetry_stub"


def test_text_longer_than_the_model_positions_fails_like_torch(ov_sparse: ovr.OpenVinoSparseBackend) -> None:
    with pytest.raises(ValueError, match=r"\[600\] tokens exceed the model's \[512\] positions"):
        ov_sparse.infer([Encoded(list(range(1000, 1600)))])


def distilbert_model(tmp_path: Path) -> str:
    """A tiny random DistilBERT masked LM: a family without a tested export."""
    from transformers import DistilBertConfig, DistilBertForMaskedLM

    target = tmp_path / "distilbert"
    config = DistilBertConfig(vocab_size=30522, dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    DistilBertForMaskedLM(config).save_pretrained(target)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(Path(resolve_model_path(".splade_tiny")) / name, target / name)
    return str(target)


def test_auto_falls_back_to_torch_and_says_why(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = distilbert_model(tmp_path)
    make = partial(SpladeBackend, path, device="cpu", max_length=64)
    with caplog.at_level(logging.INFO, logger=ovr.__name__):
        backend = ovr.load_cpu_backend("auto", "sparse", path, make, max_length=64, cache_dir=tmp_path / "c")
    assert isinstance(backend, SpladeBackend)
    assert "runs on torch, not OpenVINO: model type [distilbert] has no tested OpenVINO export" in caplog.text
    assert not (tmp_path / "c").exists()
    with pytest.raises(ModelNotReadyError, match=r"SIDECAR_CPU_RUNTIME=openvino.*distilbert"):
        ovr.load_cpu_backend("openvino", "sparse", path, make, max_length=64, cache_dir=tmp_path / "c")


def test_without_openvino_auto_runs_torch_and_openvino_refuses(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, torch_dense: DenseBackend
) -> None:
    monkeypatch.setattr(ovr, "available", lambda: False)
    with caplog.at_level(logging.INFO, logger=ovr.__name__):
        backend = ovr.load_cpu_backend("auto", "dense", ".minilm_l6", lambda: torch_dense, max_length=256)
    assert backend is torch_dense and "openvino is not installed" in caplog.text
    with pytest.raises(ModelNotReadyError, match="openvino package is not installed"):
        ovr.load_cpu_backend("openvino", "dense", ".minilm_l6", no_torch, max_length=256)


def test_a_model_that_cannot_load_is_the_usual_typed_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    make = partial(SpladeBackend, missing, device="cpu", max_length=64)
    with pytest.raises(ModelNotReadyError, match="cannot load sparse model"):
        ovr.load_cpu_backend("auto", "sparse", missing, make, max_length=64, cache_dir=tmp_path)


def test_setting_picks_the_runtime_of_the_engine(
    monkeypatch: pytest.MonkeyPatch, cache: Path, ov_sparse: ovr.OpenVinoSparseBackend
) -> None:
    monkeypatch.setenv("SIDECAR_OPENVINO_CACHE_DIR", str(cache))
    monkeypatch.setenv("SIDECAR_CPU_RUNTIME", "torch")
    assert Settings().cpu_runtime == "torch"
    forced = build_engine(Settings(device="cpu", warmup=False), "sparse", ".splade_tiny", 128)
    default = build_engine(
        Settings(device="cpu", cpu_runtime="auto", warmup=False), "sparse", ".splade_tiny", 128
    )
    try:
        assert isinstance(forced.backend, SpladeBackend)
        assert isinstance(default.backend, ovr.OpenVinoSparseBackend)
        # torch runs on the one torch thread; OpenVINO on the engine's model thread
        assert forced._call is run_on_torch_thread and default._call is call_here
    finally:
        forced.close()
        default.close()


async def test_engine_on_openvino_serves_concurrent_callers(
    monkeypatch: pytest.MonkeyPatch,
    cache: Path,
    ov_dense: ovr.OpenVinoDenseBackend,
    torch_dense: DenseBackend,
) -> None:
    import asyncio

    monkeypatch.setenv("SIDECAR_OPENVINO_CACHE_DIR", str(cache))
    engine = await asyncio.to_thread(build_engine, Settings(device="cpu"), "dense", ".minilm_l6", 512)
    try:
        assert isinstance(engine.backend, ovr.OpenVinoDenseBackend) and engine.backend.max_length == 256
        results = await asyncio.gather(*(engine.encode([t]) for t in TEXTS[:12]), engine.encode(TEXTS[12:20]))
        got = [r for rs in results for r in rs]
        with torch.inference_mode():
            want = torch_dense.embed(torch_dense.tokenize(TEXTS[:20])).numpy()
        assert all(float(np.asarray(g.embedding) @ w) >= 0.9999 for g, w in zip(got, want, strict=True))
    finally:
        await asyncio.to_thread(engine.close)
