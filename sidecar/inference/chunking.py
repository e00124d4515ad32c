"""Elasticsearch's `chunking_settings`: validation (same rules and messages) and text splitting.

Strategies: `sentence` (default; whole sentences up to `max_chunk_size` words, the last sentence
of a chunk repeated at the start of the next when `sentence_overlap` is 1), `word` (windows of
`max_chunk_size` words overlapping by `overlap`), `recursive` (split at the first of `separators`
(regexes; or a `separator_group`: `plaintext` or `markdown`), merge neighbours back up to
`max_chunk_size` words, split what is still too long at the next separator, and fall back to
sentences), and `none`. Words are runs of non-space characters; sentences end at `.`, `!` or `?`
followed by whitespace. A sentence longer than the limit is cut into word windows.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from sidecar.errors import SettingsValidationError

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\S+")
SENTENCE_LIMITS = (20, 300)
WORD_LIMITS = (10, 300)
RECURSIVE_MIN_SIZE = 10
MAX_SEPARATORS = 50
# Elasticsearch's separator groups (its regexes, Java and Python read them alike).
SEPARATOR_GROUPS: dict[str, tuple[str, ...]] = {
    "plaintext": (r"(?<!\n)\n\n(?!\n)", r"(?<!\n)\n(?!\n)"),
    "markdown": (
        "\n# ",
        "\n## ",
        "\n### ",
        "\n#### ",
        "\n##### ",
        "\n###### ",
        r"\n^(?!\s*$).*\n-{1,}\n",
        r"\n^(?!\s*$).*\n={1,}\n",
    ),
}


@dataclass(frozen=True)
class ChunkingSettings:
    strategy: str = "sentence"
    max_chunk_size: int = 250
    overlap: int = 0  # word strategy only
    sentence_overlap: int = 1  # sentence strategy only
    separators: tuple[str, ...] = ()  # recursive strategy only

    def to_dict(self) -> dict[str, Any]:
        if self.strategy == "none":
            return {"strategy": "none"}
        if self.strategy == "recursive":
            return {
                "strategy": "recursive",
                "max_chunk_size": self.max_chunk_size,
                "separators": list(self.separators),
            }
        if self.strategy == "word":
            return {"strategy": "word", "max_chunk_size": self.max_chunk_size, "overlap": self.overlap}
        return {
            "strategy": "sentence",
            "max_chunk_size": self.max_chunk_size,
            "sentence_overlap": self.sentence_overlap,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> ChunkingSettings:
        """Validate as Elasticsearch does; all problems are reported at once."""
        if raw is None:
            return DEFAULT_CHUNKING
        if not isinstance(raw, dict):
            raise SettingsValidationError("Validation Failed: 1: [chunking_settings] must be an object;")
        errors: list[str] = []
        strategy = raw.get("strategy")
        if strategy is None:
            _fail(["[chunking_settings] does not contain the required setting [strategy]"])
        if strategy not in ("sentence", "word", "none", "recursive"):
            _fail([f"Invalid chunkingStrategy {strategy}"])
        if strategy == "recursive":
            return _recursive_settings(raw)
        if strategy == "none":
            _check_keys(raw, {"strategy"}, "None", errors)
            _fail(errors)
            return cls(strategy="none")
        valid = {"strategy", "max_chunk_size", "sentence_overlap" if strategy == "sentence" else "overlap"}
        _check_keys(raw, valid, "Sentence" if strategy == "sentence" else "Word", errors)
        low, high = SENTENCE_LIMITS if strategy == "sentence" else WORD_LIMITS
        size = _required_int_between(raw, "max_chunk_size", low, high, errors)
        if strategy == "sentence":
            overlap = raw.get("sentence_overlap", 1)
            if not _is_int(overlap) or overlap not in (0, 1):
                errors.append(f"sentence_overlap[{overlap}] must be either 0 or 1")
            _fail(errors)
            assert size is not None  # noqa: S101 - _fail raised otherwise
            return cls("sentence", size, 0, int(overlap))
        overlap = raw.get("overlap")
        if overlap is None:
            errors.append("[chunking_settings] does not contain the required setting [overlap]")
        elif not _is_int(overlap) or overlap < 0:
            errors.append(
                f"[chunking_settings] Invalid value [{overlap}]. [overlap] must be a positive integer"
            )
        elif size is not None and overlap > size / 2:
            errors.append(
                f"[chunking_settings] Invalid value [{overlap}]. "
                "[overlap] must be less than or equal to half of [max_chunk_size]"
            )
        _fail(errors)
        assert size is not None and overlap is not None  # noqa: S101
        return cls("word", size, int(overlap), 0)


def _recursive_settings(raw: dict[str, Any]) -> ChunkingSettings:
    errors: list[str] = []
    invalid = [k for k in raw if k not in ("strategy", "max_chunk_size", "separator_group", "separators")]
    if invalid:
        errors.append(
            f"Recursive chunking settings can not have the following settings: [{', '.join(invalid)}]"
        )
    size, valid_size = raw.get("max_chunk_size"), 0
    if size is None:
        errors.append("[chunking_settings] does not contain the required setting [max_chunk_size]")
    elif _is_int(size) and size >= RECURSIVE_MIN_SIZE:
        valid_size = int(size)
    else:
        errors.append(
            f"[chunking_settings] Invalid value [{size}]. [max_chunk_size] must be a greater than or equal "
            f"to [{RECURSIVE_MIN_SIZE}]"
        )
    group, separators = raw.get("separator_group"), raw.get("separators")
    chosen: tuple[str, ...] = SEPARATOR_GROUPS["plaintext"]  # Elasticsearch's default
    if group is not None and separators is not None:
        errors.append("Recursive chunking settings can not have both separators and separator_set")
    elif group is not None:
        name = group.strip().lower() if isinstance(group, str) else None
        if name not in SEPARATOR_GROUPS:
            errors.append(
                f"[chunking_settings] Invalid value [{group}] received. [separator_group] must be one of "
                f"[{', '.join(sorted(SEPARATOR_GROUPS))}]"
            )
        else:
            chosen = SEPARATOR_GROUPS[name]
    elif separators is not None:
        if not isinstance(separators, list) or not all(isinstance(x, str) for x in separators):
            errors.append("[chunking_settings] [separators] must be a list of strings")
        elif not separators:
            errors.append("Recursive chunking settings can not have an empty list of separators")
        elif len(separators) > MAX_SEPARATORS:
            errors.append(f"separators list size [{len(separators)}] must not exceed [{MAX_SEPARATORS}]")
        else:
            for separator in separators:
                try:
                    re.compile(separator, re.MULTILINE)
                except re.error as exc:
                    errors.append(f"[chunking_settings] separator [{separator}] is not a valid regex: {exc}")
            chosen = tuple(separators)
    _fail(errors)
    return ChunkingSettings("recursive", valid_size, 0, 0, chosen)


DEFAULT_CHUNKING = ChunkingSettings()
NO_CHUNKING = ChunkingSettings(strategy="none")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_keys(raw: dict[str, Any], valid: set[str], label: str, errors: list[str]) -> None:
    invalid = [k for k in raw if k not in valid]
    if invalid:
        errors.append(
            f"{label} based chunking settings can not have the following settings: [{', '.join(invalid)}]"
        )


def _required_int_between(
    raw: dict[str, Any], key: str, low: int, high: int, errors: list[str]
) -> int | None:
    value = raw.get(key)
    if value is None:
        errors.append(f"[chunking_settings] does not contain the required setting [{key}]")
        return None
    if not _is_int(value) or not low <= value <= high:
        errors.append(
            f"[chunking_settings] Invalid value [{value}]. [{key}] must be a greater than or equal "
            f"to [{low}] and less than or equal to [{high}]"
        )
        return None
    return int(value)


def _fail(errors: list[str]) -> None:
    if errors:
        body = " ".join(f"{i}: {e};" for i, e in enumerate(errors, 1))
        raise SettingsValidationError(f"Validation Failed: {body}")


def chunk_text(text: str, settings: ChunkingSettings) -> list[str]:
    """Split `text` into the chunks the model sees; never returns an empty list."""
    if settings.strategy == "none":
        return [text]
    words = [m.span() for m in _WORD.finditer(text)]
    if len(words) <= settings.max_chunk_size:
        return [text]
    if settings.strategy == "word":
        return _word_windows(text, words, settings.max_chunk_size, settings.overlap)
    if settings.strategy == "recursive":
        return _recursive_chunks(text, settings.max_chunk_size, settings.separators)
    return _sentence_chunks(text, settings.max_chunk_size, settings.sentence_overlap)


def _words_in(text: str, start: int, end: int) -> int:
    return sum(1 for _ in _WORD.finditer(text, start, end))


def _recursive_chunks(text: str, size: int, separators: tuple[str, ...]) -> list[str]:
    """Elasticsearch's recursive strategy: a piece within `size` words is a chunk; a longer one is
    split where the next separator matches (the match starts the following piece), neighbours are
    merged back while they fit, and each result is checked again with the separator after it. Past
    the last separator, sentence chunks (no overlap) take over."""
    chunks: list[str] = []
    pending = [(0, len(text), 0)]  # (start, end, next separator), popped in document order
    while pending:
        start, end, level = pending.pop()
        if start == end or _words_in(text, start, end) <= size:
            chunks.append(text[start:end])
            continue
        if level >= len(separators):
            chunks.extend(_sentence_chunks(text[start:end], size, 0))
            continue
        cuts = [m.start() for m in re.compile(separators[level], re.MULTILINE).finditer(text, start, end)]
        bounds = list(dict.fromkeys([start, *cuts, end]))
        pieces = [(a, b) for a, b in itertools.pairwise(bounds) if a < b]
        merged: list[tuple[int, int]] = []
        for piece in pieces:
            if merged and _words_in(text, merged[-1][0], piece[1]) <= size:
                merged[-1] = (merged[-1][0], piece[1])
            else:
                merged.append(piece)
        pending.extend((a, b, level + 1) for a, b in reversed(merged))
    return [c for c in chunks if c.strip()] or [text]


def _word_windows(text: str, words: list[tuple[int, int]], size: int, overlap: int) -> list[str]:
    stride = size - overlap
    chunks = []
    for start in range(0, len(words), stride):
        window = words[start : start + size]
        chunks.append(text[window[0][0] : window[-1][1]])
        if start + size >= len(words):
            break
    return chunks


def _sentence_chunks(text: str, size: int, overlap: int) -> list[str]:
    # Sentences as word-span lists; long sentences become several pseudo-sentences.
    sentences: list[list[tuple[int, int]]] = []
    pos = 0
    for piece in _SENTENCE_END.split(text):
        start = text.find(piece, pos)
        pos = start + len(piece)
        spans = [(start + a, start + b) for a, b in (m.span() for m in _WORD.finditer(piece))]
        sentences.extend(spans[i : i + size] for i in range(0, len(spans), size) if spans)
    chunks: list[str] = []
    current: list[list[tuple[int, int]]] = []
    count = 0
    for sentence in sentences:
        if current and count + len(sentence) > size:
            chunks.append(text[current[0][0][0] : current[-1][-1][1]])
            carry = current[-1:] if overlap and len(current[-1]) + len(sentence) <= size else []
            current, count = carry, sum(len(s) for s in carry)
        current.append(sentence)
        count += len(sentence)
    if current:
        chunks.append(text[current[0][0][0] : current[-1][-1][1]])
    return chunks
