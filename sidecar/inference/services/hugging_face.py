"""Hugging Face Inference Endpoints and text-embeddings-inference (TEI) servers.

Requests: `POST url {"inputs": [...]}` (embeddings; TEI `/embed` and `/embed_sparse` too) and
`POST url {"query", "texts", "return_text"}` (TEI `/rerank`).
Answers understood:
- dense: `[[f, ...], ...]` or `{"embeddings": [[...]]}`;
- sparse: `[{"token": weight}, ...]` (one object per input) or TEI's
  `[[{"index": i, "value": w}, ...], ...]`, whose indices map back to token strings through the
  model's vocabulary (`vocab` setting: a tokenizer folder, `vocab.txt`, `tokenizer.json` or a
  built-in model alias; `model_id` is tried when `vocab` is absent; without either the index
  itself becomes the token name);
- rerank: `[{"index": i, "score": s, "text"?: ...}]`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sidecar.errors import SettingsValidationError
from sidecar.inference.services.base import Runtime
from sidecar.inference.services.openai_compatible import HuggingFaceChatRuntime
from sidecar.inference.services.remote import RemoteCaller, parse_failure
from sidecar.inference.types import (
    CompletionResult,
    DenseEmbedding,
    InputType,
    RankedDocument,
    SparseEmbedding,
)


def load_vocab(spec: str) -> list[str]:
    """id -> token from a tokenizer folder, vocab.txt, tokenizer.json or a model alias."""
    from sidecar.inference.models import resolve_model_path

    path = Path(resolve_model_path(spec))
    if path.is_dir():
        for name in ("tokenizer.json", "vocab.txt"):
            if (path / name).is_file():
                path = path / name
                break
    if path.name.endswith(".json") and path.is_file():
        model = json.loads(path.read_text(encoding="utf-8"))["model"]
        pairs = model["vocab"]
        mapping = pairs if isinstance(pairs, dict) else {tok: i for i, (tok, _score) in enumerate(pairs)}
        vocab = [""] * (max(mapping.values()) + 1)
        for token, idx in mapping.items():
            vocab[idx] = token
        return vocab
    if path.is_file():
        return path.read_text(encoding="utf-8").splitlines()
    raise SettingsValidationError(f"[vocab] [{spec}] is not a tokenizer folder, vocab.txt or tokenizer.json")


class HuggingFaceRuntime(Runtime):
    def __init__(
        self, inference_id: str, settings: dict[str, Any], secrets: dict[str, Any], caller: RemoteCaller
    ) -> None:
        self.inference_id = inference_id
        self.url = str(settings["url"])
        self.batch_size = int(settings.get("batch_size", 20))
        self.caller = caller
        self.headers = {"Authorization": f"Bearer {secrets['api_key']}"} if secrets.get("api_key") else {}
        vocab_spec = settings.get("vocab") or settings.get("model_id")
        self._vocab_spec = str(vocab_spec) if vocab_spec else None
        self._vocab: list[str] | None = None
        self.chat = HuggingFaceChatRuntime(inference_id, settings, secrets, caller)

    async def aclose(self) -> None:
        await self.caller.aclose()

    # completion and chat_completion: OpenAI's chat format at `url`
    async def complete(
        self, texts: list[str], *, task_settings: dict[str, Any], time_limit: float | None
    ) -> list[CompletionResult]:
        return await self.chat.complete(texts, task_settings=task_settings, time_limit=time_limit)

    def stream_completion(self, texts: list[str], *, task_settings: dict[str, Any]) -> AsyncIterator[str]:
        return self.chat.stream_completion(texts, task_settings=task_settings)

    def stream_chat(
        self, request: dict[str, Any], *, task_settings: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        return self.chat.stream_chat(request, task_settings=task_settings)

    async def _embed(self, texts: list[str]) -> list[Any]:
        out: list[Any] = []
        for start in range(0, len(texts), self.batch_size):
            part = texts[start : start + self.batch_size]
            body = await self.caller.post(self.url, {"inputs": part}, self.headers)
            if isinstance(body, dict) and "embeddings" in body:
                body = body["embeddings"]
            if not isinstance(body, list) or len(body) != len(part):
                raise parse_failure(
                    "hugging_face",
                    self.inference_id,
                    f"expected a list of {len(part)} results, got {str(body)[:200]}",
                )
            out.extend(body)
        return out

    async def dense(
        self,
        texts: list[str],
        *,
        input_type: InputType | None,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> tuple[list[DenseEmbedding], str]:
        rows = await self._embed(texts)
        if not all(isinstance(r, list) and all(isinstance(x, int | float) for x in r) for r in rows):
            raise parse_failure("hugging_face", self.inference_id, "expected lists of numbers")
        return [DenseEmbedding([float(x) for x in r]) for r in rows], "float"

    async def sparse(
        self,
        texts: list[str],
        *,
        input_type: InputType | None,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> list[SparseEmbedding]:
        rows = await self._embed(texts)
        return [SparseEmbedding(self._to_tokens(row)) for row in rows]

    def _to_tokens(self, row: Any) -> dict[str, float]:
        if isinstance(row, dict):  # {"token": weight}
            return {str(k): float(v) for k, v in row.items() if isinstance(v, int | float)}
        if isinstance(row, list):  # TEI [{"index", "value"}]
            vocab = self._vocabulary()
            out: dict[str, float] = {}
            for entry in row:
                if not isinstance(entry, dict) or "index" not in entry or "value" not in entry:
                    raise parse_failure("hugging_face", self.inference_id, f"bad sparse entry {entry!r}")
                idx = int(entry["index"])
                token = vocab[idx] if vocab is not None and 0 <= idx < len(vocab) else str(idx)
                out[token] = float(entry["value"])
            return out
        raise parse_failure("hugging_face", self.inference_id, f"unexpected sparse result {str(row)[:200]}")

    def _vocabulary(self) -> list[str] | None:
        if self._vocab is None and self._vocab_spec:
            try:
                self._vocab = load_vocab(self._vocab_spec)
            except (OSError, SettingsValidationError, KeyError, ValueError):
                self._vocab_spec = None  # a hub id we cannot read offline: fall back to indices
        return self._vocab

    async def rerank(
        self,
        query: str,
        documents: list[str],
        *,
        top_n: int | None,
        return_documents: bool,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> list[RankedDocument]:
        body = await self.caller.post(
            self.url, {"query": query, "texts": documents, "return_text": return_documents}, self.headers
        )
        if not isinstance(body, list):
            raise parse_failure("hugging_face", self.inference_id, f"expected a list, got {str(body)[:200]}")
        try:
            ranked = [
                RankedDocument(
                    int(r["index"]),
                    float(r["score"]),
                    documents[int(r["index"])] if return_documents else None,
                )
                for r in body
            ]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise parse_failure("hugging_face", self.inference_id, str(exc)) from exc
        ranked.sort(key=lambda r: -r.relevance_score)
        return ranked[:top_n] if top_n else ranked
