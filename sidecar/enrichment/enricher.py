"""`Enricher`: compute a pipeline's target fields for a batch of documents.

Per field, the input texts are read from each document (joined by newlines), optionally chunked,
encoded in requests of bounded size and turned into the field's value (a cleaned, pruned token map,
or a dense vector). Fields run concurrently so their texts share the inference batcher. With
`skip_if_unchanged` a content hash (text + endpoint + pruning + chunking) is stored beside the
value; when the stored hash matches, the stored value is reused and the text is not encoded again.
A problem with one document never fails the others: it comes back as that document's `DocumentError`.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sidecar.enrichment.documents import MISSING, apply_additions, get_path
from sidecar.errors import DocumentError, RetriableInferenceError, SidecarError
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
from sidecar.rank_features import NO_PRUNING, max_combine, prune


def content_hash(spec: FieldConfig, text: str) -> str:
    key = [
        spec.endpoint,
        spec.type.value,
        spec.pruning.model_dump() if spec.pruning else None,
        spec.chunking,
        text,
    ]
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class EnrichTask:
    doc: Mapping[str, Any]  # where the input texts are read
    fields: Sequence[int] | None = None  # indices into the pipeline's fields; None: all of them
    stored: Mapping[str, Any] | None = None  # the stored target and hash, for skip_if_unchanged


@dataclass
class EnrichResult:
    additions: dict[str, Any] = field(default_factory=dict)  # dotted path -> value
    error: DocumentError | None = None


class Enricher:
    def __init__(
        self,
        fields: Sequence[FieldConfig],
        service: InferenceServiceProtocol,
        *,
        pipeline: str = "",
        max_inputs_per_request: int = 256,
        max_input_chars: int = 100_000,
        timeout_s: float = 300.0,
        always_hash: bool = False,
    ) -> None:
        self.fields = list(fields)
        self.service = service
        self.pipeline = pipeline
        self.max_inputs = max_inputs_per_request
        self.max_input_chars = max_input_chars
        self.timeout_s = timeout_s  # generous: a full in-flight window may queue before its batch runs
        self.always_hash = always_hash  # the backfill finds un-enriched documents by their missing hash
        self.skipped_unchanged = 0  # values reused thanks to skip_if_unchanged

    @property
    def lookup_paths(self) -> list[str]:
        """Source paths to fetch from the stored documents for `skip_if_unchanged`."""
        return [p for f in self.fields if f.skip_if_unchanged for p in (f.target, f.hash_path)]

    @property
    def input_paths(self) -> list[str]:
        return sorted({p for spec in self.fields for p in spec.input})

    def input_text(self, spec: FieldConfig, doc: Mapping[str, Any]) -> str | DocumentError | None:
        """The text to encode (inputs joined by newlines), None when optional and absent.

        A text with no content (empty or whitespace only) is None too, whether the field is
        required or not: like Elasticsearch's `semantic_text`, it gets no value rather than an
        embedding of nothing.
        """
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
        text = "\n".join(parts)
        if not text.strip():
            return None
        if len(text) > self.max_input_chars:
            return DocumentError(
                "input_too_large",
                f"input of [{spec.target}] has {len(text)} characters, over {self.max_input_chars}",
            )
        return text

    async def write(
        self, docs: Sequence[Mapping[str, Any]], stored: Sequence[Mapping[str, Any] | None] | None = None
    ) -> list[dict[str, Any] | DocumentError]:
        """Per document, a copy with every target field filled, or why it failed.

        `stored[i]` is the stored version of document i (its `lookup_paths`), if any.
        Raises `RetriableInferenceError` when inference is temporarily unavailable.
        """
        tasks = [EnrichTask(doc, None, stored[i] if stored else None) for i, doc in enumerate(docs)]
        out: list[dict[str, Any] | DocumentError] = []
        for doc, result in zip(docs, await self.enrich(tasks), strict=True):
            if result.error is not None:
                out.append(result.error)
                continue
            written = copy.deepcopy(dict(doc))
            problem = apply_additions(written, result.additions)
            out.append(written if problem is None else problem)
        return out

    async def enrich(self, tasks: Sequence[EnrichTask]) -> list[EnrichResult]:
        """One result per task: the values computed (dotted path -> value) or the document's error.

        Raises `RetriableInferenceError` when inference is temporarily unavailable.
        """
        results = [EnrichResult() for _ in tasks]
        members = [
            [t for t, task in enumerate(tasks) if task.fields is None or i in task.fields]
            for i in range(len(self.fields))
        ]
        outputs = await asyncio.gather(
            *(self._field(spec, [tasks[t] for t in mine]) for spec, mine in zip(self.fields, members, strict=True))
        )
        for mine, computed in zip(members, outputs, strict=True):  # field order: the first error wins
            for t, value in zip(mine, computed, strict=True):
                result = results[t]
                if result.error is not None:
                    continue
                if isinstance(value, DocumentError):
                    result.error = value
                    result.additions.clear()
                else:
                    result.additions.update(value)
        return results

    async def _field(
        self, spec: FieldConfig, tasks: Sequence[EnrichTask]
    ) -> list[dict[str, Any] | DocumentError]:
        """Per task, the paths this field writes (empty when an optional input is absent)."""
        out: list[dict[str, Any] | DocumentError] = [{} for _ in tasks]
        chunks: dict[int, list[str]] = {}
        hashes: dict[int, str] = {}
        for i, task in enumerate(tasks):
            text = self.input_text(spec, task.doc)
            if text is None:
                continue
            if isinstance(text, DocumentError):
                out[i] = text
                continue
            if spec.skip_if_unchanged or self.always_hash:
                hashes[i] = content_hash(spec, text)
            if spec.skip_if_unchanged and task.stored is not None:
                previous = get_path(task.stored, spec.target)
                if previous is not MISSING and get_path(task.stored, spec.hash_path) == hashes[i]:
                    out[i] = {spec.target: previous, spec.hash_path: hashes[i]}
                    self.skipped_unchanged += 1
                    metrics.WORKER_SKIPPED_UNCHANGED.labels(self.pipeline).inc()
                    continue
            settings = spec.chunking_settings
            chunks[i] = chunk_text(text, settings) if settings is not None else [text]
        texts = [c for i in chunks for c in chunks[i]]
        if not texts:
            return out
        encoded = await self._infer_all(spec, texts)
        pos = 0
        for i, mine in chunks.items():
            answers = encoded[pos : pos + len(mine)]
            pos += len(mine)
            failure = next((r for r in answers if isinstance(r, DocumentError)), None)
            value = failure if failure is not None else self._field_value(spec, answers)
            if isinstance(value, DocumentError):
                out[i] = value
                continue
            written = {spec.target: value}
            if i in hashes:
                written[spec.hash_path] = hashes[i]
            out[i] = written
        return out

    async def _infer_all(self, spec: FieldConfig, texts: list[str]) -> list[Any]:
        """Encode in requests of at most `max_inputs` texts, concurrently so the batcher can merge them."""
        groups = [texts[i : i + self.max_inputs] for i in range(0, len(texts), self.max_inputs)]
        answers = await asyncio.gather(*(self._infer_isolating(spec, g) for g in groups))
        return [r for answer in answers for r in answer]

    async def _infer_isolating(self, spec: FieldConfig, texts: list[str]) -> list[Any]:
        """One request; when it fails permanently, each half alone so only the bad texts fail."""
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
            return prune(combined, pruning)  # the service's answers follow the rules already
        if len(results) != 1 or not isinstance(results[0], DenseEmbedding):
            return DocumentError(
                "inference_result", f"endpoint [{spec.endpoint}] did not return one dense vector"
            )
        return list(results[0].embedding)
