"""The benchmark's own PostgreSQL databases: created, migrated with `fabric-jobs migrate`, seeded, dropped.

Each database is named fabric_jobs_bench_<purpose>_<random>, made with CREATE DATABASE on the server given
by --postgres, and dropped when the run ends. Seeding is the benchmark's own SQL, not the store's API:
one INSERT … SELECT building rows of the shape the store writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import sql

from benchmarks.jobs import RUNNING_PAYLOAD_JSON
from benchmarks.measure import ROOT
from benchmarks.processes import fabric_jobs_command
from fabric_jobs.demo import ITEM_TYPE, JOB_TYPE
from fabric_jobs.server.model import InvokeType, JobKey, now_ms

NAME_PREFIX = "fabric_jobs_bench_"
CONNECT_TIMEOUT_SECONDS = 3
MIGRATE_TIMEOUT_SECONDS = 120.0

SEED_STORED = """
INSERT INTO job_instances (
    tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, status, invoke_type,
    creation_payload, create_time_ms, start_time_ms, end_time_ms, owner, heartbeat_ms, version
)
SELECT md5('stored-tenant/' || (n %% 100))::uuid::text,
    md5('stored-workspace/' || (n %% 1000))::uuid::text,
    %(item_type)s,
    md5('stored-item/' || (n %% 10000))::uuid::text,
    %(job_type)s,
    md5('stored/' || n)::uuid::text,
    'Completed', %(invoke_type)s, %(payload)s,
    %(base_ms)s + n, %(base_ms)s + n + 10, %(base_ms)s + n + 1000, 'worker-seed', %(base_ms)s + n + 10, 3
FROM generate_series(%(start)s::bigint, %(stop)s::bigint - 1) AS n
"""

SEED_KEYS = """
INSERT INTO job_instances (
    tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, status, invoke_type,
    creation_payload, create_time_ms, start_time_ms, owner, heartbeat_ms, version
)
SELECT key.tenant_id, key.workspace_id, key.item_type, key.item_id, key.job_type, key.job_instance_id,
    %(status)s, %(invoke_type)s, %(payload)s,
    %(base_ms)s + key.n, %(base_ms)s + key.n + 10, 'worker-seed', %(base_ms)s + key.n + 10, 2
FROM unnest(%(tenant_id)s::text[], %(workspace_id)s::text[], %(item_type)s::text[], %(item_id)s::text[],
    %(job_type)s::text[], %(job_instance_id)s::text[])
    WITH ORDINALITY AS key (tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, n)
ON CONFLICT DO NOTHING
"""

ANALYZE_EVERY_SECONDS = 1.0


def default_server() -> str:
    return os.environ.get("FABRIC_JOBS_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def unreachable_reason(server: str) -> str | None:
    """None when the server answers, else why not (one line)."""
    try:
        with psycopg.connect(f"{server}/postgres", connect_timeout=CONNECT_TIMEOUT_SECONDS):
            return None
    except psycopg.OperationalError as exc:
        return f"PostgreSQL at {server} is unreachable ({' '.join(str(exc).split())})"


class Databases:
    """The databases of one run, on one server; `create` makes and migrates one, the context drops them all."""

    def __init__(self, server: str) -> None:
        self.server = server
        self._names: list[str] = []
        self._prepared: dict[str, str] = {}

    def url(self, name: str) -> str:
        return f"{self.server}/{name}"

    async def prepare(self, purposes: Iterable[str]) -> None:
        """Create and migrate the databases of these purposes at once, for `create` to hand out."""
        listed = list(purposes)
        urls = await asyncio.gather(*(self._create(purpose) for purpose in listed))
        self._prepared.update(zip(listed, urls, strict=True))

    async def create(self, purpose: str) -> str:
        """A new database migrated by `fabric-jobs migrate` (made by `prepare` or now); returns its URL."""
        prepared = self._prepared.pop(purpose, None)
        return prepared if prepared is not None else await self._create(purpose)

    async def _create(self, purpose: str) -> str:
        name = f"{NAME_PREFIX}{purpose}_{uuid.uuid4().hex[:8]}"
        await self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._names.append(name)
        url = self.url(name)
        await migrate(url)
        return url

    async def drop_all(self) -> None:
        while self._names:
            name = self._names.pop()
            await self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    async def _admin(self, statement: sql.Composed) -> None:
        async with await psycopg.AsyncConnection.connect(self.url("postgres"), autocommit=True) as admin:
            await admin.execute(statement)


@asynccontextmanager
async def databases(server: str) -> AsyncIterator[Databases]:
    made = Databases(server)
    try:
        yield made
    finally:
        await made.drop_all()


async def migrate(url: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *fabric_jobs_command(),
        "migrate",
        "--log-level",
        "WARNING",
        "--database",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=ROOT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), MIGRATE_TIMEOUT_SECONDS)
    if process.returncode != 0:
        raise RuntimeError(f"fabric-jobs migrate --database {url} failed ({process.returncode}): {output.decode()}")


async def seed_keys(url: str, keys: Iterable[JobKey], status: str) -> None:
    """Insert the jobs of `keys` in `status` (started, not ended): what the baseline app reads and cancels."""
    listed = list(keys)
    params: dict[str, object] = {
        field: [getattr(key, field) for key in listed]
        for field in ("tenant_id", "workspace_id", "item_type", "item_id", "job_type", "job_instance_id")
    }
    params.update(status=status, invoke_type=InvokeType.MANUAL.value, payload=RUNNING_PAYLOAD_JSON, base_ms=now_ms())
    async with await psycopg.AsyncConnection.connect(url) as connection:
        async with connection.transaction():
            await connection.execute(SEED_KEYS, params)
        await connection.execute("ANALYZE job_instances")


async def seed_stored(url: str, start: int, stop: int) -> None:
    """Add Completed jobs stored_key(start) … stored_key(stop - 1) in one INSERT … SELECT, then ANALYZE."""
    params = {
        "item_type": ITEM_TYPE,
        "job_type": JOB_TYPE,
        "invoke_type": InvokeType.MANUAL.value,
        "payload": RUNNING_PAYLOAD_JSON,
        "base_ms": now_ms(),
        "start": start,
        "stop": stop,
    }
    async with await psycopg.AsyncConnection.connect(url) as connection:
        async with connection.transaction():
            await connection.execute(SEED_STORED, params)
        await connection.execute("ANALYZE job_instances")


@asynccontextmanager
async def analyzing_queue(url: str) -> AsyncIterator[None]:
    """ANALYZE procrastinate_jobs every second until the context ends: a stand-in for autoanalyze (off on the
    machine's server). Without fresh statistics a queue that grew from empty keeps the plan of an empty table,
    and procrastinate's fetch then walks every queued job (procrastinate issue #1242)."""

    async def keep_analyzing() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
            while True:
                await connection.execute("ANALYZE procrastinate_jobs")
                await asyncio.sleep(ANALYZE_EVERY_SECONDS)

    task = asyncio.create_task(keep_analyzing(), name="autoanalyze stand-in")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def server_version(url: str) -> str:
    (version,) = await query_one(url, "SELECT version()", {})
    return str(version).split(",")[0]


async def execute(url: str, statement: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        await connection.execute(statement.encode())


async def query_one(url: str, query: str, params: Mapping[str, object]) -> tuple[Any, ...]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        cursor = await connection.execute(query, params)
        row = await cursor.fetchone()
    assert row is not None
    return tuple(row)


async def query_all(url: str, query: str, params: Mapping[str, object]) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        cursor = await connection.execute(query, params)
        return [tuple(row) for row in await cursor.fetchall()]
