"""The shared database: PostgreSQL through psycopg 3 (async) and a psycopg_pool connection pool.

Connections run in autocommit: every status change is a single
`UPDATE ... WHERE <key> AND status IN (...) RETURNING *`, which READ COMMITTED re-checks against
the newest version of the row when another transaction changed it first.
Migrations are applied by `migrate()` (the `fabric-jobs migrate` command), never by `open()`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager

import psycopg
from procrastinate.schema import SchemaManager
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, TupleRow, dict_row
from psycopg_pool import AsyncConnectionPool

from fabric_jobs.server.model import JobStatus, now_ms
from fabric_jobs.server.store.base import StoreError
from fabric_jobs.server.store.changes import announcement
from fabric_jobs.server.store.migrations import Migration, load_migrations, newer_schema
from fabric_jobs.server.store.queries import load_named_queries
from fabric_jobs.server.store.rows import key_from_row

QUERIES = load_named_queries("postgresql.sql")
PROCRASTINATE_SCHEMA_VERSION = 1001
"""procrastinate's schema (its tables, functions and triggers) in the same database, applied and recorded
like our own migrations, after them; procrastinate's version is pinned in pyproject.toml."""
MIGRATIONS = [
    *load_migrations("postgresql"),
    Migration(PROCRASTINATE_SCHEMA_VERSION, "procrastinate schema", SchemaManager.get_schema()),
]

CONNECT_TIMEOUT_S = 5
MIGRATION_LOCK_KEY = 0x4A0B5_0001  # pg_advisory_xact_lock key held while migrating; any fixed bigint


class PostgresConnector:
    """The JobStore's connector to PostgreSQL. `url` is a libpq URL, postgresql://user@host:port/dbname?options."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.url, self.address = _parse_url(url)
        self.min_size = min_size
        self.max_size = max_size
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]] | None = None
        self.origin = uuid.uuid4().hex
        """Names this connector in its change announcements: its own process publishes its changes directly."""

    async def migrate(self) -> None:
        """Apply pending migrations in one transaction that holds an advisory lock: a second migrate waits, then
        finds nothing to do."""
        with _translated_errors(self.where):
            async with await self._connect() as connection, connection.transaction():
                await connection.execute(QUERIES["take_migration_lock"], {"lock_key": MIGRATION_LOCK_KEY})
                await connection.execute(QUERIES["create_schema_migrations"])
                cursor = await connection.execute(QUERIES["applied_migration_versions"])
                applied = {version for (version,) in await cursor.fetchall()}
                newer = newer_schema(applied, MIGRATIONS)
                if newer is not None:
                    raise StoreError(f"database {self.address}: {newer}")
                for migration in MIGRATIONS:
                    if migration.version in applied:
                        continue
                    await connection.execute(migration.script)
                    await connection.execute(
                        QUERIES["record_migration"], {"version": migration.version, "applied_at_ms": now_ms()}
                    )

    async def open(self) -> None:
        """Connect; StoreError when the server is unreachable or the database is not migrated."""
        if self._pool is not None:
            return
        with _translated_errors(self.where):
            async with await self._connect() as connection:
                applied = await _applied_migrations(connection)
            newer = newer_schema(applied, MIGRATIONS)
            if newer is not None:
                raise StoreError(f"database {self.address}: {newer}")
            missing = [migration.version for migration in MIGRATIONS if migration.version not in applied]
            if missing:
                raise StoreError(
                    f"database {self.address} is not migrated: run `fabric-jobs migrate --database URL` "
                    f"(missing migrations {missing})"
                )
            pool = AsyncConnectionPool(
                self.url,
                min_size=self.min_size,
                max_size=self.max_size,
                kwargs={"connect_timeout": CONNECT_TIMEOUT_S},
                configure=_autocommit,
                open=False,
                name="fabric-jobs",
            )
            try:
                await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
            except BaseException:
                await pool.close()
                raise
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            with _translated_errors(self.where):
                await pool.close()

    async def run(self, query: str, params: Mapping[str, object], *, announce: bool = False) -> list[DictRow]:
        """With `announce`, NOTIFY the keys and versions of the rows the query returned, on the same connection
        (migration 0002 says why apart)."""
        if self._pool is None:
            raise StoreError(f"the PostgreSQL store {self.address} is not open")
        with _translated_errors(self.where):
            async with self._pool.connection() as connection, connection.cursor(row_factory=dict_row) as cursor:
                await cursor.execute(QUERIES[query], params)
                rows = await cursor.fetchall() if cursor.description is not None else []
                if announce and rows:
                    changes = [announcement(key_from_row(row), row["version"], self.origin) for row in rows]
                    await cursor.execute(QUERIES["announce_changes"], {"keys": changes})
                return rows

    def status_set(self, statuses: Collection[JobStatus]) -> list[str]:
        """A list, which psycopg passes as a text[] for `= ANY(...)`."""
        return sorted(status.value for status in statuses)

    @property
    def where(self) -> str:
        return f"at {self.address}"

    async def _connect(self) -> psycopg.AsyncConnection[TupleRow]:
        return await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)


async def _autocommit(connection: psycopg.AsyncConnection[TupleRow]) -> None:
    """Pool connections run each statement as its own transaction. Set here rather than in the pool's connection
    arguments, which procrastinate reuses for its LISTEN connection along with its own autocommit=True."""
    await connection.set_autocommit(True)


@contextmanager
def _translated_errors(where: str) -> Iterator[None]:
    """The one place where psycopg errors (pool timeouts included) become StoreError."""
    try:
        yield
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise StoreError(f"PostgreSQL {where}: {reason}") from exc


def _parse_url(url: str) -> tuple[str, str]:
    """The URL psycopg will use (postgres:// spelled postgresql://) and its host:port/dbname for messages
    (never the user or the password); StoreError for a URL libpq cannot parse."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    with _translated_errors("URL"):
        params = conninfo_to_dict(url)
    port = str(params.get("port") or 5432)
    if not all(part.isdigit() for part in port.split(",")):
        raise StoreError(f"PostgreSQL URL: the port {port!r} is not a number")
    return url, f"{params.get('host') or 'localhost'}:{port}/{params.get('dbname') or ''}"


async def _applied_migrations(connection: psycopg.AsyncConnection[TupleRow]) -> set[int]:
    cursor = await connection.execute(QUERIES["schema_migrations_exists"])
    exists = await cursor.fetchone()
    if exists is None or not exists[0]:
        return set()
    cursor = await connection.execute(QUERIES["applied_migration_versions"])
    return {version for (version,) in await cursor.fetchall()}
