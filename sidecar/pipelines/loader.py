"""Read pipeline YAML files and report every problem with its file, line and key.

One YAML parse gives both the data and, for every key or list item, the line it sits on; pydantic's
error locations and the cross-field checks are then mapped back onto those lines. `${VAR}` and
`${VAR:-default}` in string values are replaced from the environment (`$${` is a literal `${`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sidecar.errors import PipelineConfigError
from sidecar.inference.types import TaskType
from sidecar.pipelines.checks import cross_check
from sidecar.pipelines.schema import PipelineConfig

Loc = tuple[str | int, ...]
TaskTypeLookup = Callable[[str], TaskType | None]

_VAR = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.key or '<file>'}: {self.message}"


def format_loc(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Document:
    """A parsed YAML file: its data and the line (1-based) of every key and list item."""

    def __init__(self, text: str) -> None:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            self.lines: dict[Loc, int] = {}
            self.duplicates: list[tuple[Loc, int]] = []
            if node is not None:
                self._walk(node, ())
            self.data: Any = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()

    def _walk(self, node: yaml.Node, loc: Loc) -> None:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in seen:
                    self.duplicates.append(((*loc, key), key_node.start_mark.line + 1))
                seen.add(key)
                self.lines[(*loc, key)] = key_node.start_mark.line + 1
                self._walk(value_node, (*loc, key))
                self.lines[(*loc, key)] = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, (*loc, index))

    def line_of(self, loc: Loc) -> int | None:
        """The line of `loc`, or of its nearest ancestor present in the file (missing keys)."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None


def _interpolate(data: Any, env: Mapping[str, str], loc: Loc, missing: list[tuple[Loc, str]]) -> Any:
    if isinstance(data, dict):
        return {k: _interpolate(v, env, (*loc, str(k)), missing) for k, v in data.items()}
    if isinstance(data, list):
        return [_interpolate(v, env, (*loc, i), missing) for i, v in enumerate(data)]
    if not isinstance(data, str) or "${" not in data:
        return data

    def replace(match: re.Match[str]) -> str:
        escaped, name, default = match.groups()
        if escaped:
            return match.group(0)[1:]
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                missing.append((loc, name))
                return ""
            return default
        return value

    return _VAR.sub(replace, data)


def unset_message(name: str) -> str:
    """What to do about an unset `${NAME}`: the local stack's URLs are in `.devstack/env`."""
    hint = " (or `source .devstack/env` for the local stack)" if name.startswith("SIDECAR_") else ""
    return f"environment variable [{name}] is not set: export {name}=...{hint}, or give a default as ${{{name}:-value}}"


def _pydantic_loc(loc: tuple[int | str, ...], doc: _Document) -> Loc:
    """Drop the type tags pydantic may add (e.g. `list[str]`) so the location names real keys."""
    out: list[str | int] = []
    for part in loc:
        if isinstance(part, str) and "[" in part and (*out, part) not in doc.lines:
            continue
        out.append(part)
    return tuple(out)


def parse_pipeline_text(
    text: str,
    file: str,
    env: Mapping[str, str] | None = None,
    task_type_of: TaskTypeLookup | None = None,
) -> tuple[PipelineConfig | None, list[Problem]]:
    """Parse one pipeline; returns the config (None when invalid) and every problem found."""
    env = os.environ if env is None else env
    try:
        doc = _Document(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        return None, [Problem(file, line, "", f"invalid YAML: {exc.problem or exc}")]
    except yaml.YAMLError as exc:
        return None, [Problem(file, None, "", f"invalid YAML: {exc}")]
    problems = [Problem(file, line, format_loc(loc), "duplicate key") for loc, line in doc.duplicates]
    if not isinstance(doc.data, dict):
        problems.append(Problem(file, doc.line_of(()), "", "a pipeline file must hold one mapping"))
        return None, problems
    missing: list[tuple[Loc, str]] = []
    data = _interpolate(doc.data, env, (), missing)
    problems += [
        Problem(file, doc.line_of(loc), format_loc(loc), unset_message(name)) for loc, name in missing
    ]

    def reported(loc: Loc) -> bool:  # a value left empty by an unset variable: its cause is reported
        return any(loc[: len(cause)] == cause for cause, _ in missing)

    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = _pydantic_loc(tuple(error["loc"]), doc)
            if not reported(loc):
                message = str(error["msg"]).removeprefix("Value error, ")
                problems.append(Problem(file, doc.line_of(loc), format_loc(loc), message))
        return None, problems
    for loc, message in cross_check(config, task_type_of):
        if not reported(loc):
            problems.append(Problem(file, doc.line_of(loc), format_loc(loc), message))
    return (None if problems else config), problems


def load_pipeline(
    path: str | Path, env: Mapping[str, str] | None = None, task_type_of: TaskTypeLookup | None = None
) -> PipelineConfig:
    """Load one pipeline file or raise `PipelineConfigError` listing every problem."""
    config, problems = validate_file(path, env, task_type_of)
    if config is None:
        lines = [str(p) for p in problems]
        raise PipelineConfigError(f"invalid pipeline [{path}]: " + "; ".join(lines), lines)
    return config


def validate_file(
    path: str | Path, env: Mapping[str, str] | None = None, task_type_of: TaskTypeLookup | None = None
) -> tuple[PipelineConfig | None, list[Problem]]:
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(file, None, "", f"cannot read the file: {exc}")]
    return parse_pipeline_text(text, file, env, task_type_of)


def load_pipelines(
    paths: Iterable[str | Path],
    env: Mapping[str, str] | None = None,
    task_type_of: TaskTypeLookup | None = None,
) -> list[PipelineConfig]:
    """Load several pipelines; all problems of all files are raised together. Names must be unique."""
    configs: list[PipelineConfig] = []
    problems: list[str] = []
    names: dict[str, str] = {}
    for path in paths:
        config, found = validate_file(path, env, task_type_of)
        problems += [str(p) for p in found]
        if config is not None:
            if config.name in names:
                problems.append(
                    f"{path}: name: pipeline name [{config.name}] is also used by {names[config.name]}"
                )
            names[config.name] = str(path)
            configs.append(config)
    if problems:
        raise PipelineConfigError("invalid pipelines: " + "; ".join(problems), problems)
    return configs
