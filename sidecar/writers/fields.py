"""Build a pipeline's target fields (`rank_features`, `sparse_vector`, `dense_vector`) from inference.

For each configured field the writer reads the input text(s) from the document, optionally chunks
them, calls the inference service in requests of bounded size, and writes the result at the target
path. With `skip_if_unchanged` a content hash (text + endpoint + pruning + chunking) is stored
beside the vector; when the stored hash matches, the stored vector is reused and the text is not
encoded again. Problems with one document never fail the others: they come back as `DocumentError`.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sidecar.errors import SidecarError
from sidecar.inference.chunking import chunk_text
from sidecar.inference.types import (
    DenseEmbedding,
    InferenceServiceProtocol,
    InputType,
    SparseEmbedding,
    TaskType,
)
from sidecar.observability import metrics
from sidecar.pipelines.schema import FieldConfig
from sidecar.writers.rank_features import NO_PRUNING, clean_features, max_combine


@dataclass(frozen=True)
class DocumentError:
    """Why one document cannot be written; `error_type` and `reason` go into the dead letter."""

    error_type: str
    reason: str


class RetriableInferenceError(Exception):
    """Inference failed for a reason that is not the documents' fault (overload, model not ready)."""

    def __init__(self, cause: SidecarError) -> None:
        super().__init__(cause.reason)
        self.cause = cause


MISSING = object()


def get_path(doc: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (a literal dotted key wins), or `MISSING`."""
    if path in doc:
        return doc[path]
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return MISSING
        node = node[part]
    return node


def set_path(doc: dict[str, Any], path: str, value: Any) -> DocumentError | None:
    parts = path.split(".")
    node = doc
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return DocumentError("target_conflict", f"field [{part}] of target [{path}] is not an object")
        node = child
    node[parts[-1]] = value
    return None


def content_hash(spec: FieldConfig, text: str) -> str:
    key = [
        spec.endpoint,
        spec.type.value,
        spec.pruning.model_dump() if spec.pruning else None,
        spec.chunking,
        text,
    ]
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:32]


@dataclass
class _Work:
    """Texts of one field still to encode: document index -> chunks."""

    spec: FieldConfig
    chunks: dict[int, list[str]] = field(default_factory=dict)
    hashes: dict[int, str] = field(default_factory=dict)


class FieldWriter:
    def __init__(
        self,
        fields: Sequence[FieldConfig],
        service: InferenceServiceProtocol,
        *,
        max_inputs_per_request: int = 256,
        max_input_chars: int = 100_000,
        pipeline: str = "",
        timeout_s: float = 300.0,
    ) -> None:
        self.fields = list(fields)
        self.service = service
        self.max_inputs = max_inputs_per_request
        self.max_input_chars = max_input_chars
        self.pipeline = pipeline
        self.timeout_s = timeout_s  # generous: a full in-flight window may queue before its batch runs
        self.skipped_unchanged = 0  # vectors reused thanks to skip_if_unchanged

    @property
    def lookup_paths(self) -> list[str]:
        """Source paths to fetch from the stored documents for `skip_if_unchanged`."""
        return [p for f in self.fields if f.skip_if_unchanged for p in (f.target, f.hash_path)]

    def input_text(self, spec: FieldConfig, doc: Mapping[str, Any]) -> str | DocumentError | None:
        """The text to encode (inputs joined by newlines), None when optional and absent."""
        parts: list[str] = []
        for path in spec.input:
            value = get_path(doc, path)
            if value is MISSING or value is None:
                if spec.required:
                    return DocumentError("missing_input_field", f"input field [{path}] is missing")
                continue
            if not isinstance(value, str):
                kind = type(value).__name__
                return DocumentError(
                    "invalid_input_field", f"input field [{path}] must be a string, not {kind}"
                )
            parts.append(value)
        if not parts:
            return None
        text = "\n".join(parts)
        if len(text) > self.max_input_chars:
            return DocumentError(
                "input_too_large",
                f"input of [{spec.target}] has {len(text)} characters, over {self.max_input_chars}",
            )
        return text

    async def write(
        self, docs: Sequence[Mapping[str, Any]], stored: Sequence[Mapping[str, Any] | None] | None = None
    ) -> list[dict[str, Any] | DocumentError]:
        """Return, per document, a copy with the target fields filled, or why it failed.

        `stored[i]` is the stored version of document i (its `lookup_paths`), if any.
        Raises `RetriableInferenceError` when inference is temporarily unavailable.
        """
        out: list[dict[str, Any] | DocumentError] = [copy.deepcopy(dict(d)) for d in docs]
        work: list[_Work] = []
        for spec in self.fields:
            todo = _Work(spec)
            for i, doc in enumerate(docs):
                if isinstance(out[i], DocumentError):
                    continue
                text = self.input_text(spec, doc)
                if text is None:
                    continue
                if isinstance(text, DocumentError):
                    out[i] = text
                    continue
                if spec.skip_if_unchanged:
                    digest = content_hash(spec, text)
                    todo.hashes[i] = digest
                    previous = stored[i] if stored else None
                    if previous is not None and get_path(previous, spec.hash_path) == digest:
                        value = get_path(previous, spec.target)
                        if value is not MISSING:
                            self._put(out, i, spec.target, value)
                            self._put(out, i, spec.hash_path, digest)
                            self.skipped_unchanged += 1
                            metrics.WORKER_SKIPPED_UNCHANGED.labels(self.pipeline).inc()
                            continue
                settings = spec.chunking_settings
                todo.chunks[i] = chunk_text(text, settings) if settings is not None else [text]
            work.append(todo)
        for todo in work:
            await self._encode(todo, out)
        return out

    async def _encode(self, todo: _Work, out: list[dict[str, Any] | DocumentError]) -> None:
        docs = [i for i in todo.chunks if not isinstance(out[i], DocumentError)]
        texts = [c for i in docs for c in todo.chunks[i]]
        if not texts:
            return
        results = await self._infer_all(todo.spec, texts)
        pos = 0
        for i in docs:
            n = len(todo.chunks[i])
            mine = results[pos : pos + n]
            pos += n
            failure = next((r for r in mine if isinstance(r, DocumentError)), None)
            if failure is not None:
                out[i] = failure
                continue
            value = self._field_value(todo.spec, mine)
            if isinstance(value, DocumentError):
                out[i] = value
                continue
            self._put(out, i, todo.spec.target, value)
            if i in todo.hashes:
                self._put(out, i, todo.spec.hash_path, todo.hashes[i])

    async def _infer_all(self, spec: FieldConfig, texts: list[str]) -> list[Any]:
        """Encode in requests of at most `max_inputs` texts, concurrently so the batcher can merge them."""
        groups = [texts[i : i + self.max_inputs] for i in range(0, len(texts), self.max_inputs)]
        answers = await asyncio.gather(*(self._infer_isolating(spec, g) for g in groups))
        return [r for answer in answers for r in answer]

    async def _infer_isolating(self, spec: FieldConfig, texts: list[str]) -> list[Any]:
        """One request; when it fails permanently, each text alone so only the bad ones fail."""
        try:
            return await self._infer(spec, texts)
        except SidecarError as exc:
            if exc.retriable:
                raise RetriableInferenceError(exc) from exc
            if len(texts) == 1:
                return [DocumentError(exc.es_type, f"inference failed: {exc.reason}")]
        half = len(texts) // 2
        left, right = await asyncio.gather(
            self._infer_isolating(spec, texts[:half]), self._infer_isolating(spec, texts[half:])
        )
        return left + right

    async def _infer(self, spec: FieldConfig, texts: list[str]) -> list[Any]:
        sparse = spec.type.sparse
        output = await self.service.infer(
            spec.endpoint,
            texts,
            task_type=TaskType.SPARSE_EMBEDDING if sparse else TaskType.TEXT_EMBEDDING,
            input_type=None if sparse else InputType.INGEST,
            timeout=self.timeout_s,
        )
        if len(output.results) != len(texts):
            raise SidecarError(
                f"endpoint [{spec.endpoint}] returned {len(output.results)} results for {len(texts)}"
            )
        return list(output.results)

    @staticmethod
    def _field_value(spec: FieldConfig, results: list[Any]) -> Any:
        if spec.type.sparse:
            if not all(isinstance(r, SparseEmbedding) for r in results):
                return DocumentError(
                    "inference_result", f"endpoint [{spec.endpoint}] did not return sparse vectors"
                )
            pruning = spec.pruning.to_pruning() if spec.pruning else NO_PRUNING
            combined = (
                results[0].embedding if len(results) == 1 else max_combine(r.embedding for r in results)
            )
            return clean_features(combined, pruning)
        if len(results) != 1 or not isinstance(results[0], DenseEmbedding):
            return DocumentError(
                "inference_result", f"endpoint [{spec.endpoint}] did not return one dense vector"
            )
        return list(results[0].embedding)

    @staticmethod
    def _put(out: list[dict[str, Any] | DocumentError], i: int, path: str, value: Any) -> None:
        doc = out[i]
        if isinstance(doc, dict):
            problem = set_path(doc, path, value)
            if problem is not None:
                out[i] = problem
