"""Enrich documents field by field with the pipeline's `FieldWriter`s; shared by the hook and the backfill.

Each task may ask for a subset of the pipeline's fields (a partial update touching one field's
inputs, a backfill finding one field stale). Only the inputs are handed to the writer, and only
what it computed comes back: `additions` maps each written path (target, content hash) to its value.
Fields run concurrently so their texts share the inference batcher.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sidecar.inference.types import InferenceServiceProtocol
from sidecar.pipelines.schema import FieldConfig
from sidecar.writers.fields import MISSING, DocumentError, FieldWriter, content_hash, get_path, set_path


@dataclass(frozen=True)
class EnrichTask:
    doc: Mapping[str, Any]  # where the input texts are read
    fields: Sequence[int] | None = None  # indices into the pipeline's fields; None: all of them
    stored: Mapping[str, Any] | None = None  # the stored target and hash, for skip_if_unchanged


@dataclass
class EnrichResult:
    additions: dict[str, Any] = field(default_factory=dict)  # dotted path -> value
    error: DocumentError | None = None


def project(doc: Mapping[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """Only the input values, under their dotted paths (the writer reads a literal dotted key first)."""
    out: dict[str, Any] = {}
    for path in paths:
        value = get_path(doc, path)
        if value is not MISSING:
            out[path] = value
    return out


def apply_additions(doc: dict[str, Any], additions: Mapping[str, Any]) -> DocumentError | None:
    """Write the additions into `doc` in place (objects created as needed)."""
    for path, value in additions.items():
        problem = set_path(doc, path, value)
        if problem is not None:
            return problem
    return None


def nested(additions: Mapping[str, Any]) -> dict[str, Any]:
    """The additions as one partial document (for an `update` operation)."""
    out: dict[str, Any] = {}
    apply_additions(out, additions)
    return out


class FieldEnricher:
    def __init__(
        self,
        fields: Sequence[FieldConfig],
        service: InferenceServiceProtocol,
        *,
        pipeline: str,
        max_inputs_per_request: int = 256,
        max_input_chars: int = 100_000,
        always_hash: bool = False,
    ) -> None:
        self.fields = list(fields)
        self.always_hash = always_hash  # the backfill finds un-enriched documents by their missing hash
        self.writers = [
            FieldWriter(
                [spec],
                service,
                max_inputs_per_request=max_inputs_per_request,
                max_input_chars=max_input_chars,
                pipeline=pipeline,
            )
            for spec in self.fields
        ]

    @property
    def lookup_paths(self) -> list[str]:
        return [p for w in self.writers for p in w.lookup_paths]

    @property
    def input_paths(self) -> list[str]:
        return sorted({p for spec in self.fields for p in spec.input})

    async def enrich(self, tasks: Sequence[EnrichTask]) -> list[EnrichResult]:
        """One result per task; raises `RetriableInferenceError` when inference is unavailable."""
        results = [EnrichResult() for _ in tasks]
        members = [
            [t for t, task in enumerate(tasks) if task.fields is None or i in task.fields]
            for i in range(len(self.fields))
        ]
        outputs = await asyncio.gather(
            *(self._run(i, [tasks[t] for t in mine]) for i, mine in enumerate(members))
        )
        for i, (mine, written) in enumerate(zip(members, outputs, strict=True)):
            spec = self.fields[i]
            for t, doc in zip(mine, written, strict=True):
                result = results[t]
                if result.error is not None:
                    continue
                if isinstance(doc, DocumentError):
                    result.error = doc
                    result.additions.clear()
                    continue
                self._collect(i, spec, tasks[t], doc, result)
        return results

    async def _run(self, i: int, tasks: list[EnrichTask]) -> list[dict[str, Any] | DocumentError]:
        if not tasks:
            return []
        spec = self.fields[i]
        docs = [project(task.doc, spec.input) for task in tasks]
        stored = [task.stored for task in tasks] if spec.skip_if_unchanged else None
        return await self.writers[i].write(docs, stored)

    def _collect(
        self, i: int, spec: FieldConfig, task: EnrichTask, doc: dict[str, Any], result: EnrichResult
    ) -> None:
        value = get_path(doc, spec.target)
        if value is MISSING:
            return  # an optional input was absent: nothing to write
        result.additions[spec.target] = value
        digest = get_path(doc, spec.hash_path)
        if digest is MISSING and self.always_hash:
            text = self.writers[i].input_text(spec, project(task.doc, spec.input))
            digest = content_hash(spec, text) if isinstance(text, str) else MISSING
        if digest is not MISSING:
            result.additions[spec.hash_path] = digest
