"""Elasticsearch's built-in model ids, mapped to models this server can load.

Elasticsearch ships `.elser_model_*` (sparse), `.multilingual-e5-small*` (dense, 384 dims) and
`.rerank-v1` (cross-encoder) as trained models of its own. Here each id is an alias in one table:
the embedded defaults point at the packaged models so the documentation's examples work offline,
and `SIDECAR_MODEL_ALIASES` (JSON object: alias -> local path | hub id | packaged model) replaces
any of them with the real model the operator has. An alias served by an embedded default is a
*stand-in*: its results differ from Elastic's model, and every answer about it says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

ELSER_IDS = (".elser_model_1", ".elser_model_2", ".elser_model_2_linux-x86_64")
E5_IDS = (".multilingual-e5-small", ".multilingual-e5-small_linux-x86_64")
RERANK_ID = ".rerank-v1"
ELSER_DEFAULT_ID = ".elser_model_2"  # the platform-agnostic variant, as off Linux x86_64

# What serves each built-in id when the operator configured nothing (all packaged, offline).
STAND_INS: dict[str, str] = {
    **dict.fromkeys(ELSER_IDS, ".splade_tiny"),
    **dict.fromkeys(E5_IDS, ".minilm_l6"),
    RERANK_ID: ".minilm_l6",
}
_DESCRIPTIONS = {
    ".splade_tiny": "SPLADE-tiny, a small English SPLADE model",
    ".minilm_l6": "all-MiniLM-L6-v2, an English 384-dimension sentence encoder",
}
# E5 was trained with these prefixes; Elasticsearch adds them per input type (none otherwise).
E5_PREFIXES = {"ingest": "passage: ", "search": "query: "}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelAlias:
    alias: str
    target: str
    stand_in: bool  # an embedded default, not the model the alias names


class ModelAliases:
    """The alias table: embedded stand-ins, overridden (or extended) by the operator's entries."""

    def __init__(self, configured: Mapping[str, str] | None = None) -> None:
        table = {alias: ModelAlias(alias, target, True) for alias, target in STAND_INS.items()}
        for alias, target in (configured or {}).items():
            table[alias] = ModelAlias(alias, str(target), False)
        self._table = table

    def get(self, model_id: str) -> ModelAlias | None:
        return self._table.get(model_id)

    def resolve(self, model_id: str) -> str:
        """The model to load for `model_id` (itself when it is no alias)."""
        alias = self._table.get(model_id)
        return alias.target if alias else model_id

    def uses_e5_prefixes(self, model_id: str) -> bool:
        """E5 prefixes apply when an E5 id is served by a real model (not the MiniLM stand-in)."""
        alias = self._table.get(model_id)
        return alias is not None and alias.alias in E5_IDS and not alias.stand_in

    def stand_in_warning(self, model_id: str) -> str | None:
        alias = self._table.get(model_id)
        if alias is None or not alias.stand_in:
            return None
        return (
            f"model [{model_id}] is served by the stand-in [{alias.target}] "
            f"({_DESCRIPTIONS.get(alias.target, 'a packaged model')}), not by Elastic's model; "
            "its results differ. Map the id to the real model with SIDECAR_MODEL_ALIASES"
        )

    def describe(self) -> list[str]:
        """One line per alias, for the startup log."""
        return [
            f"{a.alias} -> {a.target}" + (" (embedded stand-in)" if a.stand_in else "")
            for a in sorted(self._table.values(), key=lambda a: a.alias)
        ]

    def log_table(self) -> None:
        log.info("model aliases: %s", "; ".join(self.describe()))


def e5_prefix(input_type: str | None) -> str:
    return E5_PREFIXES.get(input_type or "", "")
