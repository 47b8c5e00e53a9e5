from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from google.protobuf import json_format
from psycopg import sql

from fabric_jobs.errors import details_to_pb
from fabric_jobs.server.model import JobKey, JobRecord, JobStatus, NewJob
from fabric_jobs.server.store.base import ListQuery, StoreError, open_store
from fabric_jobs.server.store.error_column import error_from_column, error_to_column
from fabric_jobs.server.store.page_token import decode_page_token, encode_page_token
from fabric_jobs.server.store.postgresql import MIGRATIONS, QUERIES, PostgresStore
from fabric_jobs.server.store.sqlite import SqliteStore
from fabric_jobs.v1 import job_service_pb2 as pb
from tests.postgres import create_database, database_url, drop_database, unique_database_name
from tests.server.test_store_sqlite import (
    CANCELLED,
    COMPLETED,
    EXECUTOR_LOST,
    FAILED,
    HANDLER_FAILED,
    IN_PROGRESS,
    NOT_STARTED,
    job_key,
    new_job,
)


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    opened = PostgresStore(postgres_url)
    await opened.open()
    yield opened
    await opened.close()


async def insert(store: PostgresStore, key: JobKey, create_time_ms: int = 1_000) -> JobRecord:
    record, created = await store.insert(new_job(key, create_time_ms))
    assert created
    return record


async def start(store: PostgresStore, key: JobKey, *, owner: str = "worker-a", at_ms: int = 2_000) -> JobRecord:
    record = await store.transition(key, {NOT_STARTED}, IN_PROGRESS, at_ms=at_ms, owner=owner)
    assert record is not None
    return record


async def status_of(store: PostgresStore, key: JobKey) -> JobStatus:
    record = await store.get(key)
    assert record is not None
    return record.status


async def run_sql(url: str, statement: str) -> list[tuple[object, ...]]:
    """Run one statement on its own connection; its rows, if it returns any."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        cursor = await connection.execute(statement.encode())
        return await cursor.fetchall() if cursor.description is not None else []


async def test_insert_then_get_returns_every_field(store: PostgresStore) -> None:
    key = job_key()
    job = NewJob(key, new_job(key).invoke_type, '{"nested":{"x":[1,2]}}', 1_702_219_299_412)

    inserted, created = await store.insert(job)

    assert created
    assert inserted == JobRecord(
        key=key,
        status=NOT_STARTED,
        invoke_type=job.invoke_type,
        creation_payload='{"nested":{"x":[1,2]}}',
        create_time_ms=1_702_219_299_412,
        start_time_ms=None,
        end_time_ms=None,
        error=None,
        cancel_requested=False,
        owner=None,
        version=1,
    )
    assert await store.get(key) == inserted


async def test_insert_of_an_existing_key_returns_the_existing_record(store: PostgresStore) -> None:
    key = job_key()
    first = await insert(store, key)
    started = await start(store, key)

    again, created = await store.insert(dataclasses.replace(new_job(key, 9_999), creation_payload='{"other":true}'))

    assert not created
    assert again == started
    assert again.creation_payload == first.creation_payload


async def test_concurrent_inserts_of_one_key_create_it_once(store: PostgresStore) -> None:
    results = await asyncio.gather(*(store.insert(new_job(job_key())) for _ in range(8)))

    assert sorted(created for _, created in results) == [False] * 7 + [True]
    assert len({record for record, _ in results}) == 1


@pytest.mark.parametrize("field", [field.name for field in dataclasses.fields(JobKey)])
async def test_a_key_differing_in_any_field_is_another_job(store: PostgresStore, field: str) -> None:
    key = job_key()
    await insert(store, key)
    other = dataclasses.replace(key, **{field: "different"})

    assert await store.get(other) is None
    assert await store.transition(other, {NOT_STARTED}, CANCELLED, at_ms=5) is None
    assert await store.cancel(other, at_ms=5) is None
    _, created = await store.insert(new_job(other))
    assert created
    assert await status_of(store, key) is NOT_STARTED


async def test_transition_to_in_progress_sets_start_time_owner_and_version(store: PostgresStore) -> None:
    key = job_key()
    await insert(store, key)

    started = await start(store, key, owner="worker-a", at_ms=2_000)

    assert started.status is IN_PROGRESS
    assert started.start_time_ms == 2_000
    assert started.end_time_ms is None
    assert started.owner == "worker-a"
    assert started.version == 2
    assert await store.get(key) == started


async def test_transition_from_an_unexpected_status_changes_nothing(store: PostgresStore) -> None:
    key = job_key()
    inserted = await insert(store, key)

    assert await store.transition(key, {IN_PROGRESS}, COMPLETED, at_ms=3_000) is None
    assert await store.transition(key, set(), IN_PROGRESS, at_ms=3_000, owner="w") is None
    assert await store.get(key) == inserted


async def test_transition_of_a_missing_key_returns_none(store: PostgresStore) -> None:
    assert await store.transition(job_key(), {NOT_STARTED}, IN_PROGRESS, at_ms=1, owner="w") is None


async def test_terminal_transition_sets_end_time_keeps_start_time_and_stores_the_error(store: PostgresStore) -> None:
    key = job_key()
    await insert(store, key)
    await start(store, key, at_ms=2_000)

    failed = await store.transition(key, {IN_PROGRESS}, FAILED, at_ms=3_000, error=HANDLER_FAILED)

    assert failed is not None
    assert failed.status is FAILED
    assert (failed.start_time_ms, failed.end_time_ms) == (2_000, 3_000)
    assert failed.error == HANDLER_FAILED
    assert failed.owner == "worker-a"
    assert failed.version == 3
    assert await store.get(key) == failed


async def test_the_first_terminal_write_wins(store: PostgresStore) -> None:
    key = job_key()
    await insert(store, key)
    await start(store, key)
    completed = await store.transition(key, {IN_PROGRESS}, COMPLETED, at_ms=3_000)
    assert completed is not None

    everything = set(JobStatus)
    assert await store.transition(key, everything, CANCELLED, at_ms=4_000) is None
    assert await store.transition(key, everything, FAILED, at_ms=4_000, error=HANDLER_FAILED) is None
    assert await store.transition(key, everything, IN_PROGRESS, at_ms=4_000, owner="b") is None
    assert await store.transition(key, everything, NOT_STARTED, at_ms=4_000) is None
    assert await store.cancel(key, at_ms=4_000) == completed
    assert await store.get(key) == completed


async def test_racing_terminal_writes_have_exactly_one_winner(postgres_url: str) -> None:
    store = PostgresStore(postgres_url, min_size=8, max_size=8)
    await store.open()
    try:
        for n in range(10):
            key = job_key(f"race-{n}")
            await insert(store, key)
            await start(store, key)
            writes = [
                store.transition(key, {IN_PROGRESS}, status, at_ms=3_000 + index)
                for index, status in enumerate([COMPLETED, FAILED, CANCELLED] * 2)
            ]
            results = await asyncio.gather(*writes, store.cancel(key, at_ms=3_000))
            winners = [record for record in results[:-1] if record is not None]
            assert len(winners) == 1
            assert await store.get(key) == winners[0]
    finally:
        await store.close()


async def test_transition_back_to_not_started_clears_the_start(store: PostgresStore) -> None:
    key = job_key()
    await insert(store, key)
    await start(store, key)

    requeued = await store.transition(key, {IN_PROGRESS}, NOT_STARTED, at_ms=3_000)

    assert requeued is not None
    assert (requeued.status, requeued.start_time_ms, requeued.owner, requeued.version) == (NOT_STARTED, None, None, 3)


async def test_cancel_of_a_queued_job_ends_it_cancelled(store: PostgresStore) -> None:
    key = job_key()
    queued = await insert(store, key)

    cancelled = await store.cancel(key, at_ms=1_500)

    assert cancelled == dataclasses.replace(
        queued, status=CANCELLED, end_time_ms=1_500, cancel_requested=True, version=2
    )
    assert await store.get(key) == cancelled
    assert await store.cancel(key, at_ms=1_600) == cancelled


async def test_cancel_of_a_running_job_requests_it_once(store: PostgresStore) -> None:
    key = job_key()
    await insert(store, key)
    running = await start(store, key)

    requested = await store.cancel(key, at_ms=2_500)
    repeated = await store.cancel(key, at_ms=2_600)

    assert requested == dataclasses.replace(running, cancel_requested=True, version=running.version + 1)
    assert repeated == requested


async def test_cancel_leaves_a_terminal_job_unchanged(store: PostgresStore) -> None:
    key = job_key()
    await insert(store, key)
    completed = await store.transition(key, {NOT_STARTED}, COMPLETED, at_ms=3_000)

    assert await store.cancel(key, at_ms=4_000) == completed


async def test_cancel_of_a_missing_key_returns_none(store: PostgresStore) -> None:
    assert await store.cancel(job_key(), at_ms=1) is None


async def test_list_is_newest_first_within_one_tenant(store: PostgresStore) -> None:
    await insert(store, job_key("old"), create_time_ms=1)
    await insert(store, job_key("new"), create_time_ms=3)
    await insert(store, job_key("mid"), create_time_ms=2)
    await insert(store, job_key("other-tenant", tenant="t2"), create_time_ms=4)

    page, token = await store.list(ListQuery(tenant_id="t1"))

    assert [record.key.job_instance_id for record in page] == ["new", "mid", "old"]
    assert token is None


async def test_list_filters_combine(store: PostgresStore) -> None:
    await insert(store, job_key("a", workspace="w1", item_id="i1"))
    await insert(store, job_key("b", workspace="w1", item_id="i2"))
    await insert(store, job_key("c", workspace="w2", item_id="i1"))
    await insert(store, job_key("d", workspace="w1", item_id="i1"))
    await start(store, job_key("d", workspace="w1", item_id="i1"))

    async def ids(query: ListQuery) -> set[str]:
        page, _ = await store.list(query)
        return {record.key.job_instance_id for record in page}

    assert await ids(ListQuery(tenant_id="t1", workspace_id="w1")) == {"a", "b", "d"}
    assert await ids(ListQuery(tenant_id="t1", item_id="i1")) == {"a", "c", "d"}
    assert await ids(ListQuery(tenant_id="t1", workspace_id="w1", item_id="i1")) == {"a", "d"}
    assert await ids(ListQuery(tenant_id="t1", statuses=frozenset({IN_PROGRESS}))) == {"d"}
    assert await ids(ListQuery(tenant_id="t1", statuses=frozenset({IN_PROGRESS, NOT_STARTED}))) == {"a", "b", "c", "d"}
    assert await ids(ListQuery(tenant_id="t1", item_type="Org.Workload.Item", job_type="Refresh")) == {
        "a",
        "b",
        "c",
        "d",
    }
    assert await ids(ListQuery(tenant_id="t1", job_type="Other")) == set()
    assert await ids(ListQuery(tenant_id="t2")) == set()


async def test_paging_with_filters_visits_every_record_once_in_order(store: PostgresStore) -> None:
    keys = [job_key(f"j{n % 4}", workspace=f"w{n % 3}", item_id=f"i{n // 12}") for n in range(36)]
    for n, key in enumerate(keys):
        await insert(store, key, create_time_ms=100 + n // 5)
        if n % 3 == 0:
            await start(store, key)
    in_progress = ListQuery(tenant_id="t1", item_type="Org.Workload.Item", statuses=frozenset({IN_PROGRESS}))
    everything, _ = await store.list(dataclasses.replace(in_progress, page_size=1000))

    seen: list[JobRecord] = []
    token: str | None = None
    pages = 0
    while True:
        page, token = await store.list(dataclasses.replace(in_progress, page_size=5, page_token=token))
        seen.extend(page)
        pages += 1
        if token is None:
            break
        assert decode_page_token(token) == (
            page[-1].create_time_ms,
            page[-1].key.job_instance_id,
            page[-1].key.workspace_id,
            page[-1].key.item_type,
            page[-1].key.item_id,
            page[-1].key.job_type,
        )

    assert pages == 3
    assert len(seen) == 12
    assert seen == everything
    assert {record.status for record in seen} == {IN_PROGRESS}
    assert len({record.key for record in seen}) == len(seen)
    sort_keys = [(r.create_time_ms, r.key.job_instance_id, r.key.workspace_id, r.key.item_id) for r in seen]
    assert sort_keys == sorted(sort_keys, reverse=True)


async def test_list_orders_text_by_code_point_as_sqlite_does(store: PostgresStore) -> None:
    for instance in ["a", "B", "b", "Z", "é", "_"]:
        await insert(store, job_key(instance), create_time_ms=1)

    page, _ = await store.list(ListQuery(tenant_id="t1"))

    assert [record.key.job_instance_id for record in page] == sorted(["a", "B", "b", "Z", "é", "_"], reverse=True)


async def test_a_full_last_page_has_no_next_token(store: PostgresStore) -> None:
    for n in range(4):
        await insert(store, job_key(f"j{n}"), create_time_ms=n)

    first, token = await store.list(ListQuery(tenant_id="t1", page_size=2))
    second, last_token = await store.list(ListQuery(tenant_id="t1", page_size=2, page_token=token))

    assert token is not None
    assert len(first) == len(second) == 2
    assert last_token is None


@pytest.mark.parametrize(
    "token",
    [
        "not base64 at all!",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(b"{not json").decode(),
        base64.urlsafe_b64encode(b'{"a":1}').decode(),
        base64.urlsafe_b64encode(b'["1","a","b","c","d","e"]').decode(),
        base64.urlsafe_b64encode(b'[1,"a","b"]').decode(),
        encode_page_token((2**63, "a", "b", "c", "d", "e")),
    ],
)
async def test_a_page_token_it_did_not_issue_is_a_value_error(store: PostgresStore, token: str) -> None:
    with pytest.raises(ValueError, match="page token"):
        await store.list(ListQuery(tenant_id="t1", page_token=token))


async def test_a_page_size_below_one_is_a_value_error(store: PostgresStore) -> None:
    with pytest.raises(ValueError, match="page_size"):
        await store.list(ListQuery(tenant_id="t1", page_size=0))


async def test_keys_with_status_are_oldest_first_and_limited(store: PostgresStore) -> None:
    await insert(store, job_key("c"), create_time_ms=3)
    await insert(store, job_key("a", tenant="t2"), create_time_ms=1)
    await insert(store, job_key("b"), create_time_ms=2)
    await insert(store, job_key("running"), create_time_ms=0)
    await start(store, job_key("running"))

    assert await store.keys_with_status(NOT_STARTED, 2) == [job_key("a", tenant="t2"), job_key("b")]
    assert await store.keys_with_status(NOT_STARTED, 10) == [job_key("a", tenant="t2"), job_key("b"), job_key("c")]
    assert await store.keys_with_status(IN_PROGRESS, 10) == [job_key("running")]
    assert await store.keys_with_status(COMPLETED, 10) == []


async def test_heartbeat_returns_the_cancel_requested_jobs_of_that_owner_only(store: PostgresStore) -> None:
    for name, owner in [("a1", "a"), ("a2", "a"), ("b1", "b")]:
        await insert(store, job_key(name))
        await start(store, job_key(name), owner=owner)
    await insert(store, job_key("queued"))
    for name in ["a2", "b1", "queued"]:
        await store.cancel(job_key(name), at_ms=4_000)

    assert await store.heartbeat("a", at_ms=5_000) == [job_key("a2")]
    assert await store.heartbeat("b", at_ms=5_000) == [job_key("b1")]
    assert await store.heartbeat("nobody", at_ms=5_000) == []


async def test_heartbeat_renews_the_lease(store: PostgresStore) -> None:
    await insert(store, job_key())
    await start(store, job_key(), owner="a", at_ms=1_000)

    await store.heartbeat("a", at_ms=9_000)

    assert await store.fail_expired(lease_ms=5_000, at_ms=10_000, error=EXECUTOR_LOST) == []
    assert await store.fail_expired(lease_ms=5_000, at_ms=14_001, error=EXECUTOR_LOST) != []


async def test_fail_expired_fails_only_expired_in_progress_jobs_of_any_owner(
    store: PostgresStore, postgres_url: str
) -> None:
    for name, owner, at_ms in [("stale-a", "a", 1_000), ("stale-b", "b", 2_000), ("fresh", "a", 8_000)]:
        await insert(store, job_key(name))
        await start(store, job_key(name), owner=owner, at_ms=at_ms)
    await store.heartbeat("b", at_ms=3_000)
    await insert(store, job_key("queued"), create_time_ms=0)
    await insert(store, job_key("done"))
    await start(store, job_key("done"), at_ms=1_000)
    done = await store.transition(job_key("done"), {IN_PROGRESS}, COMPLETED, at_ms=1_500)

    failed = await store.fail_expired(lease_ms=5_000, at_ms=10_000, error=EXECUTOR_LOST)

    assert {record.key.job_instance_id for record in failed} == {"stale-a", "stale-b"}
    for record in failed:
        assert (record.status, record.end_time_ms, record.error, record.version) == (FAILED, 10_000, EXECUTOR_LOST, 3)
        assert await store.get(record.key) == record
    assert await status_of(store, job_key("fresh")) is IN_PROGRESS
    assert await status_of(store, job_key("queued")) is NOT_STARTED
    assert await store.get(job_key("done")) == done
    assert await store.fail_expired(lease_ms=5_000, at_ms=10_000, error=EXECUTOR_LOST) == []
    assert await run_sql(postgres_url, "SELECT owner FROM executor_leases") == []


async def test_the_error_column_holds_proto3_json(store: PostgresStore, postgres_url: str) -> None:
    key = job_key()
    await insert(store, key)
    await store.transition(key, {NOT_STARTED}, FAILED, at_ms=3_000, error=HANDLER_FAILED)

    [(stored,)] = await run_sql(postgres_url, "SELECT error FROM job_instances")

    assert isinstance(stored, str)
    assert json_format.Parse(stored, pb.ErrorDetails()) == details_to_pb(HANDLER_FAILED)
    assert json.loads(stored)["moreDetails"][0]["additionalParameters"][0] == {"name": "retryAfter", "value": "30"}
    assert stored == error_to_column(HANDLER_FAILED)
    assert error_from_column(stored) == HANDLER_FAILED


async def test_migrate_twice_and_concurrently_applies_each_migration_once(unmigrated_postgres_url: str) -> None:
    await asyncio.gather(*(PostgresStore(unmigrated_postgres_url).migrate() for _ in range(3)))
    applied = await run_sql(unmigrated_postgres_url, "SELECT version, applied_at_ms FROM schema_migrations")

    await PostgresStore(unmigrated_postgres_url).migrate()

    assert [version for version, _ in applied] == [migration.version for migration in MIGRATIONS]
    assert await run_sql(unmigrated_postgres_url, "SELECT version, applied_at_ms FROM schema_migrations") == applied
    store = PostgresStore(unmigrated_postgres_url)
    await store.open()
    try:
        record = await insert(store, job_key())
        assert await store.get(job_key()) == record
    finally:
        await store.close()


async def test_open_refuses_a_database_that_is_not_migrated(unmigrated_postgres_url: str) -> None:
    with pytest.raises(StoreError, match=r"not migrated: run `fabric-jobs migrate --database URL`"):
        await PostgresStore(unmigrated_postgres_url).open()


async def test_open_refuses_a_database_missing_a_later_migration(postgres_url: str) -> None:
    await run_sql(postgres_url, f"DELETE FROM schema_migrations WHERE version = {MIGRATIONS[-1].version}")

    with pytest.raises(StoreError, match=rf"missing migrations \[{MIGRATIONS[-1].version}\]"):
        await PostgresStore(postgres_url).open()


async def test_the_schema_has_the_columns_and_indexes_of_sqlite(postgres_url: str, tmp_path: Path) -> None:
    sqlite_store = SqliteStore(str(tmp_path / "jobs.db"))
    await sqlite_store.open()
    await sqlite_store.close()
    with sqlite3.connect(tmp_path / "jobs.db") as connection:
        sqlite_columns = [row[1] for row in connection.execute("PRAGMA table_info(job_instances)")]
        sqlite_indexes = {row[1] for row in connection.execute("PRAGMA index_list(job_instances)") if row[3] == "c"}
    connection.close()

    columns = await run_sql(
        postgres_url,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'job_instances' "
        "ORDER BY ordinal_position",
    )
    indexes = await run_sql(
        postgres_url,
        "SELECT indexname FROM pg_indexes WHERE tablename = 'job_instances' AND indexname NOT LIKE '%pkey'",
    )

    assert [name for (name,) in columns] == sqlite_columns
    assert {name for (name,) in indexes} == sqlite_indexes


async def test_using_a_store_that_is_not_open_is_a_store_error(postgres_url: str) -> None:
    with pytest.raises(StoreError, match="not open"):
        await PostgresStore(postgres_url).get(job_key())


def test_open_store_picks_postgresql_for_both_schemes() -> None:
    for url in ["postgresql://u@db.example:6543/jobs", "postgres://u@db.example:6543/jobs"]:
        store = open_store(url)
        assert isinstance(store, PostgresStore)
        assert (store.url, store.address) == ("postgresql://u@db.example:6543/jobs", "db.example:6543/jobs")


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


@pytest.mark.parametrize("plan_cache_mode", PLAN_MODES)
@pytest.mark.parametrize(
    ("query", "indexes"),
    [
        ("keys_with_status", {"job_instances_by_status_oldest_first"}),
        ("cancel_requested_of_owner", {"job_instances_cancel_requested_by_owner"}),
        ("fail_expired", {"job_instances_by_status_oldest_first", "job_instances_in_progress_by_owner"}),
    ],
)
async def test_status_scans_read_an_index(seeded_url: str, query: str, indexes: set[str], plan_cache_mode: str) -> None:
    plan = await query_plan(seeded_url, query, PLAN_PARAMS, plan_cache_mode)

    assert any(f"Index Scan using {index} on job_instances" in plan for index in indexes), plan
    assert "Seq Scan on job_instances" not in plan, plan
