"""The embedded store: one SQLite file, one connection, used from the event-loop thread only.

SQLite statements on an indexed key take microseconds, so the async methods run them directly.
Every status change is a single `UPDATE ... WHERE <key> AND status IN (...) RETURNING *`.
"""

from __future__ import annotations

import builtins
import json
import logging
import sqlite3
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager

from fabric_jobs.errors import ErrorDetails
from fabric_jobs.server.model import JobKey, JobRecord, JobStatus, NewJob, Transition, now_ms
from fabric_jobs.server.store.base import JobFilter, ListQuery, SearchQuery, StoreError
from fabric_jobs.server.store.error_column import error_to_column
from fabric_jobs.server.store.migrations import Migration, load_migrations, newer_schema
from fabric_jobs.server.store.page_token import encode_page_token
from fabric_jobs.server.store.queries import load_named_queries
from fabric_jobs.server.store.rows import (
    filter_params,
    key_from_row,
    key_params,
    list_params,
    new_job_params,
    page_key,
    record_from_row,
    search_page_key,
    search_params,
    transition_from_row,
    transition_params,
    transition_query,
)

logger = logging.getLogger(__name__)

QUERIES = load_named_queries("sqlite.sql")
MIGRATIONS = load_migrations("sqlite")

MINIMUM_SQLITE_VERSION = (3, 35, 0)
BUSY_TIMEOUT_S = 5.0
CONNECTION_PRAGMAS = (
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)


class SqliteStore:
    """JobStore on SQLite (>= 3.35, for RETURNING). `path` is a file name or ":memory:"."""

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

    async def insert(self, job: NewJob) -> tuple[JobRecord, bool]:
        params = new_job_params(job)
        with _translated_errors(), _immediate_transaction(self._open_connection()):
            rows = self._run("insert_job", params)
            if rows and job.credential is not None:
                self._run("insert_credential", {**key_params(job.key), "sealed": job.credential})
        if rows:
            return record_from_row(rows[0]), True
        existing = await self.get(job.key)
        if existing is None:
            raise StoreError(f"job {job.key} neither inserted nor found")
        return existing, False

    async def get(self, key: JobKey) -> JobRecord | None:
        rows = self._run("get_job", key_params(key))
        return record_from_row(rows[0]) if rows else None

    async def credential(self, key: JobKey) -> bytes | None:
        rows = self._run("get_credential", key_params(key))
        return bytes(rows[0]["sealed"]) if rows else None

    async def replace_credential(self, key: JobKey, sealed: bytes) -> None:
        self._run("replace_credential", {**key_params(key), "sealed": sealed})

    async def transition(
        self,
        key: JobKey,
        expected: Collection[JobStatus],
        new: JobStatus,
        *,
        at_ms: int,
        owner: str | None = None,
        error: ErrorDetails | None = None,
    ) -> JobRecord | None:
        params = {**transition_params(key, new, at_ms, owner, error), "expected_statuses": _json_list(expected)}
        rows = self._run(transition_query(new), params)
        return record_from_row(rows[0]) if rows else None

    async def cancel(self, key: JobKey, at_ms: int) -> JobRecord | None:
        rows = self._run("cancel", {**key_params(key), "at_ms": at_ms})
        return record_from_row(rows[0]) if rows else await self.get(key)

    async def list(self, query: ListQuery) -> tuple[builtins.list[JobRecord], str | None]:
        params = {**list_params(query), "statuses": _json_list(query.statuses) if query.statuses else None}
        rows = self._run("list_jobs", params)
        page = rows[: query.page_size]
        next_token = encode_page_token(page_key(page[-1])) if len(rows) > query.page_size else None
        return [record_from_row(row) for row in page], next_token

    async def search(self, query: SearchQuery) -> tuple[builtins.list[JobRecord], str | None]:
        params = {**search_params(query), "statuses": _any_of(query.filter.statuses)}
        rows = self._run("search_jobs", params)
        page = rows[: query.page_size]
        next_token = encode_page_token(search_page_key(page[-1])) if len(rows) > query.page_size else None
        return [record_from_row(row) for row in page], next_token

    async def count_by_status(self, job_filter: JobFilter) -> dict[JobStatus, int]:
        params = {**filter_params(job_filter), "statuses": _any_of(job_filter.statuses)}
        rows = self._run("count_jobs_by_status", params)
        return {JobStatus(row["status"]): row["count"] for row in rows}

    async def transitions(self, key: JobKey) -> builtins.list[Transition]:
        return [transition_from_row(row) for row in self._run("transitions_of_job", key_params(key))]

    async def changes_after(self, seq: int, limit: int) -> builtins.list[tuple[int, JobRecord]]:
        rows = self._run("changes_after", {"after_seq": seq, "limit": limit})
        return [(row["change_seq"], record_from_row(row)) for row in rows]

    async def last_change_seq(self) -> int:
        rows = self._run("last_change_seq", {})
        seq: int = rows[0]["seq"]
        return seq

    async def keys_with_status(self, status: JobStatus, limit: int) -> builtins.list[JobKey]:
        rows = self._run("keys_with_status", {"status": status.value, "limit": limit})
        return [key_from_row(row) for row in rows]

    async def heartbeat(self, owner: str, at_ms: int) -> builtins.list[JobKey]:
        self._run("renew_executor_lease", {"owner": owner, "at_ms": at_ms})
        return [key_from_row(row) for row in self._run("cancel_requested_of_owner", {"owner": owner})]

    async def fail_expired(self, lease_ms: int, at_ms: int, error: ErrorDetails) -> builtins.list[JobRecord]:
        rows = self._run("fail_expired", {"lease_ms": lease_ms, "at_ms": at_ms, "error": error_to_column(error)})
        self._run("forget_expired_executor_leases", {"lease_ms": lease_ms, "at_ms": at_ms})
        return [record_from_row(row) for row in rows]

    def _run(self, query: str, params: Mapping[str, object]) -> builtins.list[sqlite3.Row]:
        with _translated_errors():
            rows: builtins.list[sqlite3.Row] = self._open_connection().execute(QUERIES[query], params).fetchall()
            return rows

    def _open_connection(self) -> sqlite3.Connection:
        if self._connection is None:
            raise StoreError(f"the SQLite store {self.path!r} is not open")
        return self._connection


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


def _json_list(statuses: Iterable[JobStatus]) -> str:
    return json.dumps(sorted(status.value for status in statuses))


def _any_of(statuses: Collection[JobStatus]) -> str | None:
    """The statuses parameter of a filter: None for any status."""
    return _json_list(statuses) if statuses else None
