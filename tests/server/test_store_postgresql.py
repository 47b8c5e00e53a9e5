"""What only the PostgreSQL store has: open() refuses an unmigrated database, URL and connection errors, query plans
at 10^4 rows."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from fabric_jobs.server.backend import open_store
from fabric_jobs.server.store import JobStore, StoreError
from fabric_jobs.server.store.postgresql import MIGRATIONS, QUERIES, PostgresConnector
from tests.postgres import create_database, database_url, drop_database, unique_database_name
from tests.server.store_data import job_key, run_sql


async def test_open_refuses_a_database_that_is_not_migrated(unmigrated_postgres_url: str) -> None:
    with pytest.raises(StoreError, match=r"not migrated: run `fabric-jobs migrate --database URL`"):
        await JobStore(PostgresConnector(unmigrated_postgres_url)).open()


async def test_open_refuses_a_database_missing_a_later_migration(postgres_url: str) -> None:
    await run_sql(postgres_url, f"DELETE FROM schema_migrations WHERE version = {MIGRATIONS[-1].version}")

    with pytest.raises(StoreError, match=rf"missing migrations \[{MIGRATIONS[-1].version}\]"):
        await JobStore(PostgresConnector(postgres_url)).open()


def test_open_store_picks_postgresql_for_both_schemes() -> None:
    for url in ["postgresql://u@db.example:6543/jobs", "postgres://u@db.example:6543/jobs"]:
        store = open_store(url)
        connector = store.connector
        assert isinstance(connector, PostgresConnector)
        assert (connector.url, connector.address) == ("postgresql://u@db.example:6543/jobs", "db.example:6543/jobs")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u@db.example:port/jobs", "PostgreSQL URL: the port 'port' is not a number"),
        ("postgresql://[::1/jobs", 'PostgreSQL URL: end of string reached when looking for matching "]"'),
        (
            "postgres://db.example/jobs?no_such_option=1",
            'PostgreSQL URL: invalid URI query parameter: "no_such_option"',
        ),
    ],
)
def test_open_store_of_a_url_psycopg_cannot_parse_is_one_line(url: str, message: str) -> None:
    with pytest.raises(StoreError) as raised:
        open_store(url)

    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


async def test_an_unreachable_server_is_a_store_error_naming_host_and_port(unused_tcp_port: int) -> None:
    store = open_store(f"postgresql://postgres@127.0.0.1:{unused_tcp_port}/jobs")

    with pytest.raises(StoreError) as raised:
        await store.open()

    assert str(raised.value).startswith(f"PostgreSQL at 127.0.0.1:{unused_tcp_port}/jobs: ")
    assert "Connection refused" in str(raised.value)
    assert "\n" not in str(raised.value)
    assert isinstance(raised.value.__cause__, psycopg.OperationalError)


SEED_JOBS = """
INSERT INTO job_instances (
    tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, status, invoke_type,
    creation_payload, create_time_ms, start_time_ms, owner, heartbeat_ms, cancel_requested
)
SELECT 't' || n % 10, 'w' || n % 7, 'Org.Workload.Item', 'i' || n % 13, 'Refresh', 'j' || n,
    CASE n % 500 WHEN 0 THEN 'InProgress' WHEN 1 THEN 'NotStarted' ELSE 'Completed' END,
    'Manual', '{}', 1000 + n,
    CASE WHEN n % 500 <> 1 THEN 2000 + n END,
    CASE WHEN n % 500 <> 1 THEN 'worker-' || n % 3 END,
    CASE WHEN n % 500 <> 1 THEN 2000 + n END,
    n % 1000 = 0
FROM generate_series(1, 10000) AS n
"""

PLAN_PARAMS: dict[str, object] = {
    **dataclasses.asdict(job_key("j5000", tenant="t0", workspace="w2", item_id="i8")),
    "expected_statuses": ["InProgress"],
    "new_status": "Completed",
    "status": "NotStarted",
    "statuses": None,
    "at_ms": 20_000,
    "lease_ms": 5_000,
    "owner": "worker-1",
    "error": None,
    "timeout_error": None,
    "before_ms": 20_000,
    "limit": 101,
    "after_create_time_ms": 8_000,
    "after_job_instance_id": "j7000",
    "after_workspace_id": "w0",
    "after_item_type": "Org.Workload.Item",
    "after_item_id": "i6",
    "after_job_type": "Refresh",
}
UNFILTERED_LIST = {**PLAN_PARAMS, "workspace_id": None, "item_type": None, "item_id": None, "job_type": None}
KEY_LOOKUPS = ["get_job", "move_to_in_progress", "move_to_terminal", "move_to_not_started", "cancel"]
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def sql_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    return "text[]" if isinstance(value, list) else "text"


async def query_plan(url: str, query: str, params: dict[str, object], plan_cache_mode: str) -> str:
    """The plan PostgreSQL picks for a named query, prepared as psycopg prepares it once it repeats."""
    names = list(dict.fromkeys(_PLACEHOLDER.findall(QUERIES[query])))
    numbered = _PLACEHOLDER.sub(lambda match: f"${names.index(match[1]) + 1}", QUERIES[query])
    types = ", ".join(sql_type(params[name]) for name in names)
    arguments = sql.SQL(", ").join(
        sql.SQL("{}::{}").format(sql.Literal(params[name]), sql.SQL(sql_type(params[name]))) for name in names
    )
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        await connection.execute(sql.SQL("SET plan_cache_mode = {}").format(sql.Literal(plan_cache_mode)))
        await connection.execute(f"PREPARE plan_under_test ({types}) AS {numbered}".encode())
        cursor = await connection.execute(sql.SQL("EXPLAIN EXECUTE plan_under_test ({})").format(arguments))
        return "\n".join(str(line) for (line,) in await cursor.fetchall())


@pytest.fixture(scope="module")
def seeded_url(postgres_template: str) -> Iterator[str]:
    """One database of 10^4 jobs, analyzed, shared by the plan tests (EXPLAIN changes nothing)."""
    name = unique_database_name("plans")
    create_database(name, template=postgres_template)
    try:
        with psycopg.connect(database_url(name), autocommit=True) as connection:
            connection.execute(SEED_JOBS.encode())
            connection.execute("ANALYZE job_instances")
        yield database_url(name)
    finally:
        drop_database(name)


PLAN_MODES = ["force_custom_plan", "force_generic_plan"]


@pytest.mark.parametrize("plan_cache_mode", PLAN_MODES)
@pytest.mark.parametrize("query", KEY_LOOKUPS)
async def test_key_lookups_use_the_primary_key(seeded_url: str, query: str, plan_cache_mode: str) -> None:
    plan = await query_plan(seeded_url, query, PLAN_PARAMS, plan_cache_mode)

    assert "Index Scan using job_instances_pkey on job_instances" in plan, plan
    assert "Seq Scan" not in plan, plan


@pytest.mark.parametrize("plan_cache_mode", PLAN_MODES)
@pytest.mark.parametrize(
    "filters",
    [{}, {"statuses": ["Completed", "InProgress"]}, {"job_type": "Refresh", "item_type": "Org.Workload.Item"}],
)
async def test_list_reads_the_tenant_index_newest_first_without_sorting(
    seeded_url: str, filters: dict[str, object], plan_cache_mode: str
) -> None:
    plan = await query_plan(seeded_url, "list_jobs", {**UNFILTERED_LIST, **filters}, plan_cache_mode)

    assert "Index Scan using job_instances_by_tenant_newest_first on job_instances" in plan, plan
    assert "Index Cond: ((tenant_id = " in plan, plan
    assert "Seq Scan" not in plan, plan
    assert "Sort" not in plan, plan


UNFILTERED_SEARCH = {
    **UNFILTERED_LIST,
    "tenant_id": None,
    "job_instance_id": None,
    "created_since_ms": None,
    "after_tenant_id": "t0",
}


@pytest.mark.parametrize("filters", [{}, {"statuses": ["Completed", "InProgress"]}, {"created_since_ms": 5_000}])
async def test_search_reads_the_cross_tenant_index_newest_first_without_sorting(
    seeded_url: str, filters: dict[str, object]
) -> None:
    """Custom plans only: a generic plan guesses that its eight optional filters leave one row and sorts, a plan
    PostgreSQL's automatic mode never picks over the far cheaper custom ones."""
    plan = await query_plan(seeded_url, "search_jobs", {**UNFILTERED_SEARCH, **filters}, "force_custom_plan")

    assert "Index Scan using job_instances_newest_first on job_instances" in plan, plan
    assert "Seq Scan" not in plan, plan
    assert "Sort" not in plan, plan


@pytest.mark.parametrize("plan_cache_mode", PLAN_MODES)
@pytest.mark.parametrize(
    ("query", "indexes"),
    [
        ("queued_in_turn", {"job_instances_queued_in_turn", "job_instances_by_status_oldest_first"}),
        ("cancel_requested_of_owner", {"job_instances_cancel_requested_by_owner"}),
        ("fail_expired", {"job_instances_by_status_oldest_first"}),
        ("expire_start_deadlines", {"job_instances_not_started_by_start_deadline"}),
        ("time_out_overdue", {"job_instances_in_progress_by_run_deadline"}),
    ],
)
async def test_status_scans_read_an_index(seeded_url: str, query: str, indexes: set[str], plan_cache_mode: str) -> None:
    plan = await query_plan(seeded_url, query, PLAN_PARAMS, plan_cache_mode)

    assert any(f"Index Scan using {index} on job_instances" in plan for index in indexes), plan
    assert "Seq Scan on job_instances" not in plan, plan
