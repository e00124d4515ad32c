"""Which pipeline, if any, enriches the documents written to an index (`source.ingest_hook.indices`).

Patterns use `*` and `?` wildcards; a pattern starting with `-` excludes (as in Elasticsearch index
expressions). The first pipeline, in file order, whose patterns select the index wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from sidecar.enrichment import Enricher
from sidecar.pipelines.date_math import DateMathError, is_date_math, resolve_index
from sidecar.pipelines.schema import PipelineConfig
from sidecar.sinks.base import BulkSink

_CACHE_LIMIT = 10_000


@dataclass(eq=False)
class HookPipeline:
    config: PipelineConfig
    enricher: Enricher
    sink: BulkSink  # look-ups of stored documents (skip_if_unchanged, partial updates)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def patterns(self) -> list[str]:
        hook = self.config.source.ingest_hook
        return [] if hook is None else hook.indices

    def selects(self, index: str) -> bool:
        include = [p for p in self.patterns if not p.startswith("-")]
        exclude = [p[1:] for p in self.patterns if p.startswith("-")]
        return any(fnmatchcase(index, p) for p in include) and not any(fnmatchcase(index, p) for p in exclude)


def concrete_index(index: str) -> str | None:
    """The index a name designates: date math resolved; None when the expression is invalid."""
    if not is_date_math(index):
        return index
    try:
        return resolve_index(index)
    except DateMathError:
        return None


class PipelineSelector:
    def __init__(self, pipelines: Sequence[HookPipeline]) -> None:
        self.pipelines = list(pipelines)
        self._cache: dict[str, HookPipeline | None] = {}

    def select(self, index: str | None) -> HookPipeline | None:
        if index is None or not self.pipelines:
            return None
        if index in self._cache:
            return self._cache[index]
        name = concrete_index(index)
        found = None if name is None else next((p for p in self.pipelines if p.selects(name)), None)
        if not is_date_math(index):  # date math resolves differently tomorrow
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[index] = found
        return found
