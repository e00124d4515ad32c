"""Dead letters of a backfill: a document the engine holds but that cannot be enriched.

They go to the pipeline's dead-letter index and/or topic through the worker's `DeadLetterWriter`.
Coordinates are the index and the document id instead of a topic, partition and offset, so the
record of a document that fails again in a later run replaces the earlier one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sidecar.deadletter import DeadLetter


@dataclass(frozen=True)
class BackfillDeadLetter(DeadLetter):
    index: str = ""
    doc_id: str = ""

    @classmethod
    def of(
        cls, index: str, doc_id: str, source: dict[str, Any], error_type: str, reason: str, stage: str
    ) -> BackfillDeadLetter:
        value = json.dumps(source, ensure_ascii=False).encode("utf-8")
        return cls(f"backfill:{index}", -1, -1, doc_id.encode("utf-8"), value, error_type, reason, stage,
                   index=index, doc_id=doc_id)  # fmt: skip

    @property
    def coordinates(self) -> str:
        return f"backfill+{self.index}+{self.doc_id}"

    def kafka_headers(self, pipeline: str, reason_chars: int = 10_000) -> list[tuple[str, bytes]]:
        ours = {
            "sidecar.error.type": self.error_type,
            "sidecar.error.reason": self.reason[:reason_chars],
            "sidecar.error.stage": self.stage,
            "sidecar.pipeline": pipeline,
            "sidecar.source.index": self.index,
            "sidecar.source.id": self.doc_id,
        }
        return [(k, v.encode("utf-8")) for k, v in ours.items()]

    def document(self, pipeline: str) -> dict[str, Any]:
        return {
            "@timestamp": datetime.now(UTC).isoformat(),
            "pipeline": pipeline,
            "error": {"type": self.error_type, "reason": self.reason, "stage": self.stage},
            "source": {"index": self.index, "id": self.doc_id, "key": self.doc_id},
            "message": {"value": (self.value or b"").decode("utf-8")},
        }
