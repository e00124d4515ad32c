"""Acknowledge a pipeline's documents only while its target index exists with the pipeline's mapping.

An index deleted while the worker runs is recreated by the next bulk request: from the pipeline's
index template (see `sidecar.sinks.setup`) with the right mapping or, without one, by dynamic
mapping, which turns a sparse vector into a pile of float fields (and soon exceeds the fields
limit). So after each bulk the types of the target fields are read back (one small request). When
the index is missing or a target field is mapped otherwise, the batch is not acknowledged: the
pipeline pauses (reason `target`, the problem in its health), setup is run again for the target
(template, index, mapping) and the batch is written again once the check passes. A field already
mapped with another type cannot be changed: the problem then names it until an operator deletes
(or reindexes) the index, which the next attempt recreates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sidecar.pipelines.schema import BackoffConfig
from sidecar.retry import TryAgain, retry_async
from sidecar.sinks.base import BulkItem, BulkResult, BulkSink
from sidecar.sinks.setup import ensure_index, field_types, put_template, template_body

log = logging.getLogger(__name__)

# Item errors that say the target itself is missing, whatever the mapping check finds a moment later.
MISSING_INDEX_ERRORS = frozenset({"index_not_found_exception"})


class TargetWriter:
    def __init__(
        self,
        sink: BulkSink,
        *,
        pipeline: str,
        configured_index: str,
        template: str,
        backoff: BackoffConfig,
        pause: Callable[[int], None],
    ) -> None:
        self.sink = sink
        self.pipeline = pipeline
        self.configured_index = configured_index  # as configured: date math stays unresolved
        self.template = template
        self.backoff = backoff
        self.pause = pause  # +1 when a batch starts waiting for the target, -1 when it is done
        self.mappings: dict[str, Any] | None = None
        self.settings: dict[str, Any] = {}
        self.expected: dict[str, str] = {}
        self.problem: str | None = None  # the last problem seen, until a check passes (health)

    def prepare(self, mappings: dict[str, Any], settings: dict[str, Any]) -> None:
        """Start checking against `mappings` (the worker calls this once its setup is done)."""
        self.mappings, self.settings = mappings, settings
        self.expected = field_types(mappings)

    async def write(self, items: Sequence[BulkItem]) -> BulkResult:
        """`sink.write(items)` (one batch: one index), repeated until the target was right when the
        answers came back."""
        index = items[0].index if items else ""
        tries = 0

        async def attempt() -> BulkResult:
            nonlocal tries
            if tries:
                await self._repair(index)
                for item in items:
                    item.attempts = 0
            tries += 1
            result = await self.sink.write(items)
            problem = await self._check(index, result)
            if problem is not None:
                raise TryAgain(problem)
            return result

        def on_retry(_attempt: int, exc: BaseException) -> None:
            problem = str(exc)
            if problem != self.problem:
                log.error("pipeline [%s] pauses: %s", self.pipeline, problem)
            self.problem = problem

        # The pause holds until this batch is written: no flapping between attempts.
        result = await retry_async(
            attempt,
            self.backoff.policy(),
            retry_on=TryAgain,
            on_retry=on_retry,
            waiting=lambda active: self.pause(1 if active else -1),
        )
        if tries > 1:
            log.info("pipeline [%s]: index [%s] is right again; batch written", self.pipeline, index)
            self.problem = None
        return result

    async def _check(self, index: str, result: BulkResult) -> str | None:
        if self.mappings is None or not result.outcomes:
            return None
        if any(o is not None and o.error_type in MISSING_INDEX_ERRORS for o in result.outcomes):
            return f"index [{index}] does not exist"
        try:
            return await self.sink.target_problem(index, self.expected)
        except Exception as exc:
            failure = self.sink.request_failure(exc)
            if failure is None:
                raise
            return f"the mapping of index [{index}] could not be read: {failure.reason}"

    async def _repair(self, index: str) -> None:
        """Setup again for the target; a refusal (a field mapped otherwise) leaves the problem as is."""
        assert self.mappings is not None  # noqa: S101 - only called after a failed check, so prepared
        body = template_body(self.configured_index, self.mappings, self.settings)
        try:
            for line in (
                await put_template(self.sink, self.template, body),
                await ensure_index(self.sink, index, self.mappings, self.settings),
            ):
                log.info("pipeline [%s]: %s", self.pipeline, line)
        except Exception as exc:
            if self.sink.request_failure(exc) is None:
                raise
            log.debug("pipeline [%s]: repair of index [%s] failed: %s", self.pipeline, index, exc)
