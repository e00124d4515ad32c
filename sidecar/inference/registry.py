"""Inference endpoints with Elasticsearch's semantics, persisted in SQLite.

SQLite (WAL, busy timeout, one short transaction per operation) makes the store safe for several
processes on one host; every read goes to the file, so an endpoint created by one process is
visible to the others at once. Secrets (`api_key`, ...) are kept in a separate column and never
appear in `public_dict()`, logs or error messages.

Built-in endpoints exist without setup and cannot be changed or deleted (ids start with `.`):
`.splade-tiny` (sparse_embedding), `.minilm-l6` (text_embedding, 384 dims) and
`.minilm-l6-rerank` (rerank by dense cosine).
"""

from __future__ import annotations

import builtins
import json
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sidecar.errors import (
    AlreadyExistsError,
    NotFoundError,
    ParseError,
    RequestValidationError,
    StatusError,
)
from sidecar.inference.chunking import ChunkingSettings
from sidecar.inference.services.base import secret_keys, validate_settings
from sidecar.inference.types import TaskType

ID_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9_\-.]*[a-z0-9])?")
CHUNKED_TASKS = (TaskType.SPARSE_EMBEDDING, TaskType.TEXT_EMBEDDING)
_CREATE_KEYS = {"service", "service_settings", "task_settings", "chunking_settings", "task_type"}
_UPDATE_KEYS = {"service_settings", "task_settings", "chunking_settings", "task_type"}


@dataclass(frozen=True)
class Endpoint:
    inference_id: str
    task_type: TaskType
    service: str
    service_settings: dict[str, Any]
    task_settings: dict[str, Any] = field(default_factory=dict)
    chunking_settings: dict[str, Any] | None = None
    secrets: dict[str, Any] = field(default_factory=dict, repr=False)
    builtin: bool = False

    def public_dict(self) -> dict[str, Any]:
        """The Elasticsearch endpoint object, without secrets."""
        body: dict[str, Any] = {
            "inference_id": self.inference_id,
            "task_type": str(self.task_type),
            "service": self.service,
            "service_settings": dict(self.service_settings),
            "task_settings": dict(self.task_settings),
        }
        if self.chunking_settings is not None:
            body["chunking_settings"] = dict(self.chunking_settings)
        return body

    @property
    def chunking(self) -> ChunkingSettings:
        return (
            ChunkingSettings.from_dict(self.chunking_settings)
            if self.chunking_settings
            else (ChunkingSettings(strategy="none"))
        )

    def config_key(self) -> str:
        """Changes whenever anything that affects serving changes (runtime cache key)."""
        return json.dumps(
            [self.service, self.service_settings, self.task_settings, self.secrets],
            sort_keys=True,
            default=str,
        )


def _builtin(inference_id: str, task: TaskType, model_id: str) -> Endpoint:
    chunking = ChunkingSettings().to_dict() if task in CHUNKED_TASKS else None
    return Endpoint(
        inference_id,
        task,
        "elasticsearch",
        {"model_id": model_id, "num_allocations": 1, "num_threads": 1},
        {},
        chunking,
        builtin=True,
    )


BUILTIN_ENDPOINTS: dict[str, Endpoint] = {
    e.inference_id: e
    for e in (
        _builtin(".splade-tiny", TaskType.SPARSE_EMBEDDING, ".splade_tiny"),
        _builtin(".minilm-l6", TaskType.TEXT_EMBEDDING, ".minilm_l6"),
        _builtin(".minilm-l6-rerank", TaskType.RERANK, ".minilm_l6"),
    )
}


def parse_task_type(value: Any) -> TaskType:
    try:
        return TaskType(value)
    except ValueError:
        raise StatusError(f"Unknown task_type [{value}]") from None


def _resolve_task_type(path_type: TaskType | str | None, body_type: Any) -> TaskType:
    url = parse_task_type(path_type) if path_type is not None else None
    if body_type is None:
        if url is None:
            raise StatusError("model is missing required setting [task_type]")
        return url
    body = parse_task_type(body_type)
    if url is not None and url != body:
        raise StatusError(
            f"Cannot resolve conflicting task_type parameter in the request URL [{url}] "
            f"and the request body [{body}]"
        )
    return body


def _object(body: dict[str, Any], key: str, required: bool = False) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        if required:
            raise StatusError(f"Model configuration is missing [{key}]")
        return {}
    if not isinstance(value, dict):
        raise ParseError(f"[{key}] must be an object")
    return dict(value)


class EndpointRegistry:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS endpoints (inference_id TEXT PRIMARY KEY,"
                " task_type TEXT NOT NULL, service TEXT NOT NULL, config TEXT NOT NULL,"
                " secrets TEXT NOT NULL, updated REAL NOT NULL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS pipeline_usage (pipeline TEXT NOT NULL,"
                " inference_id TEXT NOT NULL, PRIMARY KEY (pipeline, inference_id))"
            )

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=10000")
            yield db
        finally:
            db.close()

    # --- reads -------------------------------------------------------------------------------------
    def get(self, inference_id: str, task_type: TaskType | str | None = None) -> Endpoint:
        endpoint = BUILTIN_ENDPOINTS.get(inference_id) or self._load(inference_id)
        if endpoint is None:
            raise NotFoundError(f"Inference endpoint not found [{inference_id}]")
        if task_type is not None:
            wanted = parse_task_type(task_type)
            if wanted != endpoint.task_type:
                raise StatusError(
                    f"Incompatible task_type, the requested type [{wanted}] does not match "
                    f"the model type [{endpoint.task_type}]"
                )
        return endpoint

    def list(self, task_type: TaskType | str | None = None) -> list[Endpoint]:
        wanted = parse_task_type(task_type) if task_type is not None else None
        with self._db() as db:
            rows = db.execute(
                "SELECT inference_id, task_type, service, config, secrets FROM endpoints"
            ).fetchall()
        endpoints = [*BUILTIN_ENDPOINTS.values(), *(self._row(r) for r in rows)]
        return sorted(
            (e for e in endpoints if wanted is None or e.task_type == wanted), key=lambda e: e.inference_id
        )

    def _load(self, inference_id: str) -> Endpoint | None:
        with self._db() as db:
            row = db.execute(
                "SELECT inference_id, task_type, service, config, secrets FROM endpoints "
                "WHERE inference_id = ?",
                (inference_id,),
            ).fetchone()
        return self._row(row) if row else None

    @staticmethod
    def _row(row: tuple[str, str, str, str, str]) -> Endpoint:
        config = json.loads(row[3])
        return Endpoint(
            row[0],
            TaskType(row[1]),
            row[2],
            config["service_settings"],
            config["task_settings"],
            config.get("chunking_settings"),
            json.loads(row[4]),
        )

    # --- writes ------------------------------------------------------------------------------------
    def create(self, inference_id: str, task_type: TaskType | str | None, body: dict[str, Any]) -> Endpoint:
        if (
            not isinstance(inference_id, str)
            or inference_id == "_all"
            or not ID_PATTERN.fullmatch(inference_id)
        ):
            raise RequestValidationError(
                f"Validation Failed: 1: Invalid inference_id; '{inference_id}' must contain only lowercase "
                "alphanumeric (a-z and 0-9), hyphens, underscores or dots; "
                "must start and end with alphanumeric;"
            )
        endpoint = self._build(inference_id, task_type, body)
        if inference_id in BUILTIN_ENDPOINTS:
            raise AlreadyExistsError(f"Inference endpoint [{inference_id}] already exists")
        try:
            with self._db() as db:
                db.execute("INSERT INTO endpoints VALUES (?, ?, ?, ?, ?, ?)", self._columns(endpoint))
        except sqlite3.IntegrityError:
            raise AlreadyExistsError(f"Inference endpoint [{inference_id}] already exists") from None
        return endpoint

    def update(self, inference_id: str, task_type: TaskType | str | None, body: dict[str, Any]) -> Endpoint:
        current = self.get(inference_id, task_type)
        if current.builtin:
            raise StatusError(f"Cannot update inference endpoint [{inference_id}]: it is a reserved endpoint")
        if not isinstance(body, dict):
            raise ParseError("request body must be an object")
        for key in body:
            if key not in _UPDATE_KEYS:
                raise ParseError(f"unknown field [{key}]")
        merged = {
            "service": current.service,
            "task_type": body.get("task_type", str(current.task_type)),
            "service_settings": {
                **current.service_settings,
                **current.secrets,
                **_object(body, "service_settings"),
            },
            "task_settings": {**current.task_settings, **_object(body, "task_settings")},
            "chunking_settings": body.get("chunking_settings", current.chunking_settings),
        }
        endpoint = self._build(inference_id, current.task_type, merged)
        with self._db() as db:
            db.execute(
                "UPDATE endpoints SET task_type=?, service=?, config=?, secrets=?, updated=? "
                "WHERE inference_id=?",
                (*self._columns(endpoint)[1:], inference_id),
            )
        return endpoint

    def delete(
        self,
        inference_id: str,
        task_type: TaskType | str | None = None,
        *,
        dry_run: bool = False,
        force: bool = False,
    ) -> dict[str, Any]:
        endpoint = self.get(inference_id, task_type)
        if endpoint.builtin:
            raise StatusError(
                f"[{inference_id}] is a reserved inference endpoint. "
                "Cannot delete a reserved inference endpoint."
            )
        pipelines = self.pipelines_using(inference_id)
        if dry_run:
            return {"acknowledged": False, "pipelines": pipelines, "indexes": []}
        if pipelines and not force:
            raise StatusError(
                f"Inference endpoint {inference_id} is referenced by pipelines: {pipelines}. "
                "Ensure that no pipelines are using this inference endpoint, or use force to ignore "
                "this warning and delete the inference endpoint."
            )
        with self._db() as db:
            db.execute("DELETE FROM endpoints WHERE inference_id = ?", (inference_id,))
        return {"acknowledged": True, "pipelines": pipelines, "indexes": []}

    # --- pipeline references -----------------------------------------------------------------------
    def set_pipeline_usage(self, pipeline: str, inference_ids: Iterable[str]) -> None:
        """Record which endpoints a pipeline uses (replaces its previous set; empty clears it)."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM pipeline_usage WHERE pipeline = ?", (pipeline,))
            db.executemany(
                "INSERT OR IGNORE INTO pipeline_usage VALUES (?, ?)", [(pipeline, i) for i in inference_ids]
            )
            db.execute("COMMIT")

    def pipelines_using(self, inference_id: str) -> builtins.list[str]:
        with self._db() as db:
            rows = db.execute(
                "SELECT pipeline FROM pipeline_usage WHERE inference_id = ? ORDER BY pipeline",
                (inference_id,),
            ).fetchall()
        return [r[0] for r in rows]

    # --- validation --------------------------------------------------------------------------------
    def _build(self, inference_id: str, task_type: TaskType | str | None, body: dict[str, Any]) -> Endpoint:
        if not isinstance(body, dict):
            raise ParseError("request body must be an object")
        for key in body:
            if key not in _CREATE_KEYS:
                raise ParseError(f"unknown field [{key}]")
        task = _resolve_task_type(task_type, body.get("task_type"))
        service = body.get("service")
        if not service or not isinstance(service, str):
            raise StatusError("Model configuration is missing [service]")
        settings = _object(body, "service_settings", required=True)
        task_settings = _object(body, "task_settings")
        validate_settings(inference_id, task, service, settings, task_settings)
        raw_chunking = body.get("chunking_settings")
        chunking: dict[str, Any] | None = None
        if task in CHUNKED_TASKS:
            chunking = ChunkingSettings.from_dict(raw_chunking).to_dict()
        elif raw_chunking is not None:
            raise StatusError(f"Chunking settings are not supported for task type [{task}]")
        secret_names = secret_keys(service, settings)
        secrets = {k: settings.pop(k) for k in list(settings) if k in secret_names}
        return Endpoint(inference_id, task, service, settings, task_settings, chunking, secrets)

    @staticmethod
    def _columns(e: Endpoint) -> tuple[str, str, str, str, str, float]:
        config = {
            "service_settings": e.service_settings,
            "task_settings": e.task_settings,
            "chunking_settings": e.chunking_settings,
        }
        return (
            e.inference_id,
            str(e.task_type),
            e.service,
            json.dumps(config),
            json.dumps(e.secrets),
            time.time(),
        )


def with_task_settings(endpoint: Endpoint, overrides: dict[str, Any] | None) -> Endpoint:
    """The endpoint as one request sees it (request task_settings override stored ones)."""
    if not overrides:
        return endpoint
    return replace(endpoint, task_settings={**endpoint.task_settings, **overrides})
