"""The embedded database: one SQLite file, one connection, used from the event-loop thread only.

SQLite statements on an indexed key take microseconds, so `run` executes them directly.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager

from fabric_jobs.server.model import JobStatus, now_ms
from fabric_jobs.server.store.base import StoreError
from fabric_jobs.server.store.migrations import Migration, load_migrations, newer_schema
from fabric_jobs.server.store.queries import load_named_queries

logger = logging.getLogger(__name__)

QUERIES = load_named_queries("sqlite.sql")
MIGRATIONS = load_migrations("sqlite")

MINIMUM_SQLITE_VERSION = (3, 35, 0)
BUSY_TIMEOUT_S = 5.0
CONNECTION_PRAGMAS = (
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)


class SqliteConnector:
    """The JobStore's connector to SQLite (>= 3.35, for RETURNING). `path` is a file name or ":memory:"."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None

    async def open(self) -> None:
        if self._connection is not None:
            return
        if sqlite3.sqlite_version_info < MINIMUM_SQLITE_VERSION:
            raise StoreError(f"SQLite {sqlite3.sqlite_version} is too old: RETURNING needs 3.35 or later")
        if self.path == ":memory:":
            logger.warning("the job store is an in-memory SQLite database: every job is lost when the process stops")
        with _translated_errors():
            connection = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
            try:
                connection.row_factory = sqlite3.Row
                _use_write_ahead_log(connection)
                for pragma in CONNECTION_PRAGMAS:
                    connection.execute(pragma)
                _apply_pending_migrations(connection, MIGRATIONS)
            except BaseException:
                connection.close()
                raise
        self._connection = connection

    async def migrate(self) -> None:
        if self._connection is None:
            await self.open()
            await self.close()
            return
        with _translated_errors():
            _apply_pending_migrations(self._connection, MIGRATIONS)

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with _translated_errors():
                connection.close()

    async def run(self, query: str, params: Mapping[str, object], *, announce: bool = False) -> list[sqlite3.Row]:
        """SQLite has no notifications (`announce` does nothing): a process sharing the file learns of changes by
        polling (its executors' heartbeats, the job_transitions table)."""
        if self._connection is None:
            raise StoreError(f"the SQLite store {self.path!r} is not open")
        with _translated_errors():
            rows: list[sqlite3.Row] = self._connection.execute(QUERIES[query], params).fetchall()
            return rows

    def status_set(self, statuses: Collection[JobStatus]) -> str:
        """A JSON array, which the queries read with json_each."""
        return json.dumps(sorted(status.value for status in statuses))


@contextmanager
def _translated_errors() -> Iterator[None]:
    """The one place where sqlite3 errors become StoreError."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"SQLite: {exc}") from exc


def _use_write_ahead_log(connection: sqlite3.Connection) -> None:
    """Switch the file to WAL. SQLite answers SQLITE_BUSY at once, without waiting for the busy timeout, when two
    connections switch a new file at the same time (two first opens or migrations at once); retry until the timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
        time.sleep(0.005)


@contextmanager
def _immediate_transaction(connection: sqlite3.Connection) -> Iterator[None]:
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _apply_pending_migrations(connection: sqlite3.Connection, migrations: list[Migration]) -> None:
    connection.execute(QUERIES["create_schema_migrations"])
    applied = {row["version"] for row in connection.execute(QUERIES["applied_migration_versions"])}
    newer = newer_schema(applied, migrations)
    if newer is not None:
        raise StoreError(newer)
    for migration in migrations:
        with _immediate_transaction(connection):
            applied = {row["version"] for row in connection.execute(QUERIES["applied_migration_versions"])}
            if migration.version in applied:
                continue
            for statement in _statements(migration.script):
                connection.execute(statement)
            connection.execute(QUERIES["record_migration"], {"version": migration.version, "applied_at_ms": now_ms()})


def _statements(script: str) -> Iterator[str]:
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        raise StoreError(f"incomplete SQL statement at the end of a migration: {pending.strip()[:80]!r}")
