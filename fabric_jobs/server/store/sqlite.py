"""The embedded store: one SQLite file, one connection, used from the event-loop thread only.

SQLite statements on an indexed key take microseconds, so the async methods run them directly.
Every status change is a single `UPDATE ... WHERE <key> AND status IN (...) RETURNING *`.
"""

from __future__ import annotations

import base64
import builtins
import json
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager

from fabric_jobs.errors import ErrorDetails
from fabric_jobs.server.model import InvokeType, JobKey, JobRecord, JobStatus, NewJob, now_ms
from fabric_jobs.server.store.base import ListQuery, StoreError
from fabric_jobs.server.store.error_column import error_from_column, error_to_column
from fabric_jobs.server.store.migrations import Migration, load_migrations
from fabric_jobs.server.store.queries import load_named_queries

QUERIES = load_named_queries("sqlite.sql")
MIGRATIONS = load_migrations("sqlite")

MINIMUM_SQLITE_VERSION = (3, 35, 0)
CONNECTION_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA busy_timeout = 5000",
    "PRAGMA foreign_keys = ON",
)

_KEY_COLUMNS = ("tenant_id", "workspace_id", "item_type", "item_id", "job_type", "job_instance_id")
_PAGE_KEY_COLUMNS = ("create_time_ms", "job_instance_id", "workspace_id", "item_type", "item_id", "job_type")
_BEFORE_FIRST_PAGE = (2**63 - 1, "", "", "", "", "")


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
        with _translated_errors():
            connection = sqlite3.connect(self.path, isolation_level=None)
            try:
                connection.row_factory = sqlite3.Row
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
        rows = self._run("insert_job", _new_job_params(job))
        if rows:
            return _record(rows[0]), True
        existing = await self.get(job.key)
        if existing is None:
            raise StoreError(f"job {job.key} neither inserted nor found")
        return existing, False

    async def get(self, key: JobKey) -> JobRecord | None:
        rows = self._run("get_job", _key_params(key))
        return _record(rows[0]) if rows else None

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
        if new is JobStatus.IN_PROGRESS:
            query = "move_to_in_progress"
        elif new.is_terminal:
            query = "move_to_terminal"
        else:
            query = "move_to_not_started"
        params = {
            **_key_params(key),
            "expected_statuses": _json_list(expected),
            "new_status": new.value,
            "at_ms": at_ms,
            "owner": owner,
            "error": None if error is None else error_to_column(error),
        }
        rows = self._run(query, params)
        return _record(rows[0]) if rows else None

    async def cancel(self, key: JobKey, at_ms: int) -> JobRecord | None:
        rows = self._run("cancel", {**_key_params(key), "at_ms": at_ms})
        return _record(rows[0]) if rows else await self.get(key)

    async def list(self, query: ListQuery) -> tuple[builtins.list[JobRecord], str | None]:
        if query.page_size < 1:
            raise ValueError(f"page_size must be at least 1, not {query.page_size}")
        after = _BEFORE_FIRST_PAGE if query.page_token is None else decode_page_token(query.page_token)
        params = {
            "tenant_id": query.tenant_id,
            "workspace_id": query.workspace_id,
            "item_type": query.item_type,
            "item_id": query.item_id,
            "job_type": query.job_type,
            "statuses": _json_list(query.statuses) if query.statuses else None,
            "limit": query.page_size + 1,
            **{f"after_{column}": value for column, value in zip(_PAGE_KEY_COLUMNS, after, strict=True)},
        }
        rows = self._run("list_jobs", params)
        page = rows[: query.page_size]
        next_token = encode_page_token(page[-1]) if len(rows) > query.page_size else None
        return [_record(row) for row in page], next_token

    async def keys_with_status(self, status: JobStatus, limit: int) -> builtins.list[JobKey]:
        rows = self._run("keys_with_status", {"status": status.value, "limit": limit})
        return [_key(row) for row in rows]

    async def heartbeat(self, owner: str, at_ms: int) -> builtins.list[JobKey]:
        self._run("renew_executor_lease", {"owner": owner, "at_ms": at_ms})
        return [_key(row) for row in self._run("cancel_requested_of_owner", {"owner": owner})]

    async def fail_expired(self, lease_ms: int, at_ms: int, error: ErrorDetails) -> builtins.list[JobRecord]:
        rows = self._run("fail_expired", {"lease_ms": lease_ms, "at_ms": at_ms, "error": error_to_column(error)})
        self._run("forget_expired_executor_leases", {"lease_ms": lease_ms, "at_ms": at_ms})
        return [_record(row) for row in rows]

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


def _apply_pending_migrations(connection: sqlite3.Connection, migrations: Iterable[Migration]) -> None:
    connection.execute(QUERIES["create_schema_migrations"])
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


def _key_params(key: JobKey) -> dict[str, object]:
    return {column: getattr(key, column) for column in _KEY_COLUMNS}


def _new_job_params(job: NewJob) -> dict[str, object]:
    return {
        **_key_params(job.key),
        "invoke_type": job.invoke_type.value,
        "creation_payload": job.creation_payload,
        "create_time_ms": job.create_time_ms,
    }


def _json_list(statuses: Iterable[JobStatus]) -> str:
    return json.dumps(sorted(status.value for status in statuses))


def _key(row: sqlite3.Row) -> JobKey:
    return JobKey(*(row[column] for column in _KEY_COLUMNS))


def _record(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        key=_key(row),
        status=JobStatus(row["status"]),
        invoke_type=InvokeType(row["invoke_type"]),
        creation_payload=row["creation_payload"],
        create_time_ms=row["create_time_ms"],
        start_time_ms=row["start_time_ms"],
        end_time_ms=row["end_time_ms"],
        error=None if row["error"] is None else error_from_column(row["error"]),
        cancel_requested=bool(row["cancel_requested"]),
        owner=row["owner"],
        version=row["version"],
    )


_MIN_INT64, _MAX_INT64 = -(2**63), 2**63 - 1


def encode_page_token(row: sqlite3.Row) -> str:
    """Opaque to clients: urlsafe base64, unpadded, of the JSON list of the row's sort key."""
    sort_key = [row[column] for column in _PAGE_KEY_COLUMNS]
    return base64.urlsafe_b64encode(json.dumps(sort_key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[int, str, str, str, str, str]:
    """The sort key a token names; ValueError for anything encode_page_token did not produce."""
    try:
        sort_key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError as exc:
        raise ValueError("invalid page token") from exc
    if (
        not isinstance(sort_key, list)
        or len(sort_key) != len(_PAGE_KEY_COLUMNS)
        or type(sort_key[0]) is not int
        or not _MIN_INT64 <= sort_key[0] <= _MAX_INT64
        or not all(isinstance(part, str) for part in sort_key[1:])
    ):
        raise ValueError("invalid page token")
    create_time_ms, job_instance_id, workspace_id, item_type, item_id, job_type = sort_key
    return create_time_ms, job_instance_id, workspace_id, item_type, item_id, job_type
