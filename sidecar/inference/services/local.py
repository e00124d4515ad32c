"""The `elasticsearch` service with a local model: sparse (SPLADE), dense, and rerank by cosine.

Inputs are split per the endpoint's `chunking_settings` and one result per input comes back, as
the perform API returns: sparse chunk vectors are combined by max per token (one `rank_features`
value), dense chunk vectors by their mean, normalised again (so a long document's vector reflects
all of it, not only the model's first 256 tokens). `is_truncated` is true exactly when some chunk
was cut to fit the model. Rerank scores are
cosine similarities of the dense model's unit vectors (a documented fallback when no rerank
service is configured).
"""

from __future__ import annotations

import math
from typing import Any

from sidecar.inference.aliases import ModelAliases, e5_prefix
from sidecar.inference.chunking import ChunkingSettings, chunk_text
from sidecar.inference.executor import EnginePool
from sidecar.inference.services.base import Runtime
from sidecar.inference.types import DenseEmbedding, InputType, RankedDocument, SparseEmbedding
from sidecar.rank_features import Pruning, clean_features, max_combine


class LocalRuntime(Runtime):
    def __init__(
        self,
        pool: EnginePool,
        settings: dict[str, Any],
        chunking: ChunkingSettings,
        aliases: ModelAliases | None = None,
    ) -> None:
        aliases = aliases or ModelAliases()
        self.pool = pool
        self.model_id = aliases.resolve(str(settings["model_id"]))  # the model that really serves
        self.e5_prefixes = aliases.uses_e5_prefixes(str(settings["model_id"]))
        self.max_length = settings.get("max_seq_length")
        self.pruning = Pruning.from_dict(settings.get("pruning"))
        self.chunking = chunking

    async def sparse(
        self,
        texts: list[str],
        *,
        input_type: InputType | None,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> list[SparseEmbedding]:
        pruning = Pruning.from_dict(task_settings["pruning"]) if "pruning" in task_settings else self.pruning
        out = []
        for parts in await self._encode_chunks("sparse", texts, time_limit):
            combined = parts[0].embedding if len(parts) == 1 else max_combine(p.embedding for p in parts)
            out.append(SparseEmbedding(clean_features(combined, pruning), any(p.is_truncated for p in parts)))
        return out

    async def dense(
        self,
        texts: list[str],
        *,
        input_type: InputType | None,
        task_settings: dict[str, Any],
        time_limit: float | None,
    ) -> tuple[list[DenseEmbedding], str]:
        # As Elasticsearch does for E5: `query: ` / `passage: ` before each chunk, per input type.
        prefix = e5_prefix(input_type) if self.e5_prefixes else ""
        out = []
        for parts in await self._encode_chunks("dense", texts, time_limit, prefix):
            vector = parts[0].embedding if len(parts) == 1 else _mean_unit([list(p.embedding) for p in parts])
            out.append(DenseEmbedding(vector, any(p.is_truncated for p in parts)))
        return out, "float"

    async def _encode_chunks(
        self, kind: str, texts: list[str], time_limit: float | None, prefix: str = ""
    ) -> list[list[Any]]:
        """Each text's chunks (per `chunking_settings`, each after `prefix`) through the model in one
        call, grouped back per text."""
        engine = await self.pool.engine(kind, self.model_id, self.max_length)
        chunks = [[prefix + c for c in chunk_text(t, self.chunking)] for t in texts]
        encoded = await engine.encode([c for per_text in chunks for c in per_text], time_limit=time_limit)
        grouped, pos = [], 0
        for per_text in chunks:
            grouped.append(encoded[pos : pos + len(per_text)])
            pos += len(per_text)
        return grouped

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
        vectors, _ = await self.dense(
            [query, *documents], input_type=None, task_settings={}, time_limit=time_limit
        )
        q = vectors[0].embedding
        scores = [sum(a * b for a, b in zip(q, d.embedding, strict=True)) for d in vectors[1:]]
        ranked = sorted(
            (
                RankedDocument(i, float(s), documents[i] if return_documents else None)
                for i, s in enumerate(scores)
            ),
            key=lambda r: -r.relevance_score,
        )
        return ranked[:top_n] if top_n else ranked

    async def dimensions(self) -> int:
        engine = await self.pool.engine("dense", self.model_id, self.max_length)
        return int(engine.backend.dimensions)  # type: ignore[attr-defined]


def _mean_unit(vectors: list[list[float]]) -> list[float]:
    """The mean of unit vectors, scaled back to unit length (cosine-ready like each chunk's)."""
    mean = [sum(column) / len(vectors) for column in zip(*vectors, strict=True)]
    norm = math.sqrt(sum(x * x for x in mean)) or 1.0
    return [x / norm for x in mean]
