"""Endpoint store in SQLite: the default, for one host.

WAL, a busy timeout and one short transaction per operation make the file safe for several
processes on one host; every read goes to the file, so an endpoint created by one process is
visible to the others at once. Secrets are kept in their own column.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sidecar.inference.endpoints import (
    Endpoint,
    already_exists,
    endpoint_config,
    endpoint_from_parts,
    not_found,
)

_COLUMNS = "inference_id, task_type, service, config, secrets"
Row = tuple[str, str, str, str, str]


class SqliteEndpointStore:
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

    @staticmethod
    def _endpoint(row: Row) -> Endpoint:
        return endpoint_from_parts(row[0], row[1], row[2], json.loads(row[3]), json.loads(row[4]))

    @staticmethod
    def _values(e: Endpoint) -> tuple[str, str, str, str, str, float]:
        config, secrets = json.dumps(endpoint_config(e)), json.dumps(e.secrets)
        return (e.inference_id, str(e.task_type), e.service, config, secrets, time.time())

    # --- endpoints ---------------------------------------------------------------------------------
    def load(self, inference_id: str) -> Endpoint | None:
        with self._db() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM endpoints WHERE inference_id = ?",  # noqa: S608 - constant
                (inference_id,),
            ).fetchone()
        return self._endpoint(row) if row else None

    def load_all(self) -> list[Endpoint]:
        with self._db() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM endpoints").fetchall()  # noqa: S608 - constant
        return [self._endpoint(r) for r in rows]

    def insert(self, endpoint: Endpoint) -> None:
        try:
            with self._db() as db:
                db.execute("INSERT INTO endpoints VALUES (?, ?, ?, ?, ?, ?)", self._values(endpoint))
        except sqlite3.IntegrityError:
            raise already_exists(endpoint.inference_id) from None

    def update(self, inference_id: str, change: Callable[[Endpoint], Endpoint]) -> Endpoint:
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")  # read-change-write under the write lock: no lost update
            try:
                row = db.execute(
                    f"SELECT {_COLUMNS} FROM endpoints WHERE inference_id = ?",  # noqa: S608 - constant
                    (inference_id,),
                ).fetchone()
                if row is None:
                    raise not_found(inference_id)
                endpoint = change(self._endpoint(row))
                db.execute(
                    "UPDATE endpoints SET task_type=?, service=?, config=?, secrets=?, updated=? "
                    "WHERE inference_id=?",
                    (*self._values(endpoint)[1:], inference_id),
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        return endpoint

    def remove(self, inference_id: str) -> None:
        with self._db() as db:
            gone = db.execute("DELETE FROM endpoints WHERE inference_id = ?", (inference_id,)).rowcount
        if not gone:
            raise not_found(inference_id)

    # --- pipeline references -----------------------------------------------------------------------
    def set_pipeline_usage(self, pipeline: str, inference_ids: Iterable[str]) -> None:
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM pipeline_usage WHERE pipeline = ?", (pipeline,))
            db.executemany(
                "INSERT OR IGNORE INTO pipeline_usage VALUES (?, ?)", [(pipeline, i) for i in inference_ids]
            )
            db.execute("COMMIT")

    def pipelines_using(self, inference_id: str) -> list[str]:
        with self._db() as db:
            rows = db.execute(
                "SELECT pipeline FROM pipeline_usage WHERE inference_id = ? ORDER BY pipeline",
                (inference_id,),
            ).fetchall()
        return [r[0] for r in rows]

    def ping(self) -> None:
        with self._db() as db:
            db.execute("SELECT count(*) FROM endpoints").fetchone()

    def close(self) -> None:
        """Nothing stays open between operations."""
