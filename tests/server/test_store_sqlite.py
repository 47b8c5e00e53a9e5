from __future__ import annotations

import base64
import dataclasses
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from fabric_jobs.errors import ErrorDetails, ErrorSource, ExtendedInfo, details_to_pb
from fabric_jobs.server.model import InvokeType, JobKey, JobRecord, JobStatus, NewJob
from fabric_jobs.server.store.base import ListQuery, StoreError
from fabric_jobs.server.store.error_column import error_from_column, error_to_column
from fabric_jobs.server.store.migrations import Migration
from fabric_jobs.server.store.sqlite import MIGRATIONS, QUERIES, SqliteStore
from fabric_jobs.v1 import job_service_pb2 as pb

NOT_STARTED = JobStatus.NOT_STARTED
IN_PROGRESS = JobStatus.IN_PROGRESS
COMPLETED = JobStatus.COMPLETED
FAILED = JobStatus.FAILED
CANCELLED = JobStatus.CANCELLED

EXECUTOR_LOST = ErrorDetails(
    error_code="JobExecutorLost",
    message="The executor stopped sending heartbeats.",
    source=ErrorSource.SYSTEM,
    is_permanent=False,
)
HANDLER_FAILED = ErrorDetails(
    error_code="JobExecutionFailed",
    message="The handler raised: {0}",
    source=ErrorSource.EXTERNAL,
    is_permanent=True,
    message_parameters=("boom",),
    more_details=(
        ExtendedInfo(
            error_code="Inner",
            message="first cause",
            message_parameters=("a", "b"),
            additional_parameters=(("retryAfter", "30"), ("region", "westeurope")),
        ),
        ExtendedInfo(error_code="Other", message="second cause"),
    ),
)

# HANDLER_FAILED as the error column holds it: the proto3 JSON of fabric_jobs.v1.ErrorDetails.
HANDLER_FAILED_COLUMN: dict[str, Any] = {
    "errorCode": "JobExecutionFailed",
    "message": "The handler raised: {0}",
    "messageParameters": ["boom"],
    "source": "ERROR_SOURCE_EXTERNAL",
    "isPermanent": True,
    "moreDetails": [
        {
            "errorCode": "Inner",
            "message": "first cause",
            "messageParameters": ["a", "b"],
            "additionalParameters": [
                {"name": "retryAfter", "value": "30"},
                {"name": "region", "value": "westeurope"},
            ],
        },
        {"errorCode": "Other", "message": "second cause"},
    ],
}


def job_key(instance: str = "j1", *, tenant: str = "t1", workspace: str = "w1", item_id: str = "i1") -> JobKey:
    return JobKey(tenant, workspace, "Org.Workload.Item", item_id, "Refresh", instance)


def new_job(key: JobKey, create_time_ms: int = 1_000) -> NewJob:
    return NewJob(key, InvokeType.MANUAL, '{"a":1}', create_time_ms)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "jobs.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(str(db_path))
    await opened.open()
    yield opened
    await opened.close()


async def insert(store: SqliteStore, key: JobKey, create_time_ms: int = 1_000) -> JobRecord:
    record, created = await store.insert(new_job(key, create_time_ms))
    assert created
    return record


async def start(store: SqliteStore, key: JobKey, *, owner: str = "worker-a", at_ms: int = 2_000) -> JobRecord:
    record = await store.transition(key, {NOT_STARTED}, IN_PROGRESS, at_ms=at_ms, owner=owner)
    assert record is not None
    return record


async def status_of(store: SqliteStore, key: JobKey) -> JobStatus:
    record = await store.get(key)
    assert record is not None
    return record.status


async def test_insert_then_get_returns_every_field(store: SqliteStore) -> None:
    key = job_key()
    job = NewJob(key, InvokeType.SCHEDULED, '{"nested":{"x":[1,2]}}', 1_702_219_299_412)

    inserted, created = await store.insert(job)

    assert created
    assert inserted == JobRecord(
        key=key,
        status=NOT_STARTED,
        invoke_type=InvokeType.SCHEDULED,
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


async def test_insert_of_an_existing_key_returns_the_existing_record(store: SqliteStore) -> None:
    key = job_key()
    first = await insert(store, key)
    started = await start(store, key)

    again, created = await store.insert(NewJob(key, InvokeType.SCHEDULED, '{"other":true}', 9_999))

    assert not created
    assert again == started
    assert again.creation_payload == first.creation_payload


@pytest.mark.parametrize("field", [field.name for field in dataclasses.fields(JobKey)])
async def test_a_key_differing_in_any_field_is_another_job(store: SqliteStore, field: str) -> None:
    key = job_key()
    await insert(store, key)
    other = dataclasses.replace(key, **{field: "different"})

    assert await store.get(other) is None
    assert await store.transition(other, {NOT_STARTED}, CANCELLED, at_ms=5) is None
    assert await store.cancel(other, at_ms=5) is None
    _, created = await store.insert(new_job(other))
    assert created


async def test_transition_to_in_progress_sets_start_time_owner_and_version(store: SqliteStore) -> None:
    key = job_key()
    await insert(store, key)

    started = await start(store, key, owner="worker-a", at_ms=2_000)

    assert started.status is IN_PROGRESS
    assert started.start_time_ms == 2_000
    assert started.end_time_ms is None
    assert started.owner == "worker-a"
    assert started.version == 2
    assert await store.get(key) == started


async def test_transition_from_an_unexpected_status_changes_nothing(store: SqliteStore) -> None:
    key = job_key()
    inserted = await insert(store, key)

    assert await store.transition(key, {IN_PROGRESS}, COMPLETED, at_ms=3_000) is None
    assert await store.transition(key, set(), IN_PROGRESS, at_ms=3_000, owner="w") is None
    assert await store.get(key) == inserted


async def test_transition_of_a_missing_key_returns_none(store: SqliteStore) -> None:
    assert await store.transition(job_key(), {NOT_STARTED}, IN_PROGRESS, at_ms=1, owner="w") is None


async def test_terminal_transition_sets_end_time_keeps_start_time_and_stores_the_error(store: SqliteStore) -> None:
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


async def test_cancel_before_start_ends_without_start_time(store: SqliteStore) -> None:
    key = job_key()
    await insert(store, key)

    cancelled = await store.transition(key, {NOT_STARTED, IN_PROGRESS}, CANCELLED, at_ms=1_500)

    assert cancelled is not None
    assert (cancelled.status, cancelled.start_time_ms, cancelled.end_time_ms) == (CANCELLED, None, 1_500)
    assert cancelled.error is None


async def test_the_first_terminal_write_wins(store: SqliteStore) -> None:
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
    assert await store.get(key) == completed


async def test_transition_back_to_not_started_clears_the_start(store: SqliteStore) -> None:
    key = job_key()
    await insert(store, key)
    await start(store, key)

    requeued = await store.transition(key, {IN_PROGRESS}, NOT_STARTED, at_ms=3_000)

    assert requeued is not None
    assert (requeued.status, requeued.start_time_ms, requeued.owner, requeued.version) == (NOT_STARTED, None, None, 3)


async def test_cancel_ends_a_queued_job_cancelled(store: SqliteStore) -> None:
    key = job_key()
    before = await insert(store, key)

    cancelled = await store.cancel(key, at_ms=1_500)

    assert cancelled == dataclasses.replace(
        before, status=CANCELLED, end_time_ms=1_500, cancel_requested=True, version=before.version + 1
    )
    assert await store.cancel(key, at_ms=9_000) == cancelled
    assert await store.get(key) == cancelled


async def test_cancel_marks_a_running_job_once(store: SqliteStore) -> None:
    key = job_key()
    await insert(store, key)
    before = await start(store, key)

    requested = await store.cancel(key, at_ms=3_000)
    repeated = await store.cancel(key, at_ms=4_000)

    assert requested == dataclasses.replace(before, cancel_requested=True, version=before.version + 1)
    assert repeated == requested
    assert await store.get(key) == requested


@pytest.mark.parametrize("status", [COMPLETED, FAILED, CANCELLED])
async def test_cancel_leaves_a_terminal_job_unchanged(store: SqliteStore, status: JobStatus) -> None:
    key = job_key()
    await insert(store, key)
    await start(store, key)
    ended = await store.transition(key, {IN_PROGRESS}, status, at_ms=3_000)

    assert ended is not None
    assert await store.cancel(key, at_ms=4_000) == ended


async def test_cancel_of_a_missing_key_returns_none(store: SqliteStore) -> None:
    assert await store.cancel(job_key(), at_ms=1_000) is None


async def test_list_is_newest_first_within_one_tenant(store: SqliteStore) -> None:
    await insert(store, job_key("old"), create_time_ms=1)
    await insert(store, job_key("new"), create_time_ms=3)
    await insert(store, job_key("mid"), create_time_ms=2)
    await insert(store, job_key("other-tenant", tenant="t2"), create_time_ms=4)

    page, token = await store.list(ListQuery(tenant_id="t1"))

    assert [record.key.job_instance_id for record in page] == ["new", "mid", "old"]
    assert token is None


async def test_list_filters_combine(store: SqliteStore) -> None:
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


async def test_paging_visits_every_record_once_in_order(store: SqliteStore) -> None:
    keys = [job_key(f"j{n % 4}", workspace=f"w{n % 3}", item_id=f"i{n // 12}") for n in range(24)]
    for n, key in enumerate(keys):
        await insert(store, key, create_time_ms=100 + n // 5)
    everything, _ = await store.list(ListQuery(tenant_id="t1", page_size=1000))

    seen: list[JobRecord] = []
    token: str | None = None
    pages = 0
    while True:
        page, token = await store.list(ListQuery(tenant_id="t1", page_size=5, page_token=token))
        seen.extend(page)
        pages += 1
        if token is None:
            break

    assert pages == 5
    assert seen == everything
    assert len({record.key for record in seen}) == len(keys)
    times = [record.create_time_ms for record in seen]
    assert times == sorted(times, reverse=True)


async def test_a_full_last_page_has_no_next_token(store: SqliteStore) -> None:
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
    ],
)
async def test_a_page_token_it_did_not_issue_is_a_value_error(store: SqliteStore, token: str) -> None:
    with pytest.raises(ValueError, match="page token"):
        await store.list(ListQuery(tenant_id="t1", page_token=token))


async def test_keys_with_status_are_oldest_first_and_limited(store: SqliteStore) -> None:
    await insert(store, job_key("c"), create_time_ms=3)
    await insert(store, job_key("a", tenant="t2"), create_time_ms=1)
    await insert(store, job_key("b"), create_time_ms=2)
    await insert(store, job_key("running"), create_time_ms=0)
    await start(store, job_key("running"))

    assert await store.keys_with_status(NOT_STARTED, 2) == [job_key("a", tenant="t2"), job_key("b")]
    assert await store.keys_with_status(NOT_STARTED, 10) == [job_key("a", tenant="t2"), job_key("b"), job_key("c")]
    assert await store.keys_with_status(IN_PROGRESS, 10) == [job_key("running")]
    assert await store.keys_with_status(COMPLETED, 10) == []


async def test_heartbeat_returns_the_cancel_requested_jobs_of_that_owner_only(store: SqliteStore) -> None:
    for name, owner in [("a1", "a"), ("a2", "a"), ("b1", "b")]:
        await insert(store, job_key(name))
        await start(store, job_key(name), owner=owner)
    await insert(store, job_key("queued"))
    for name in ["a2", "b1", "queued"]:
        await store.cancel(job_key(name), at_ms=4_000)

    assert await store.heartbeat("a", at_ms=5_000) == [job_key("a2")]
    assert await store.heartbeat("b", at_ms=5_000) == [job_key("b1")]
    assert await store.heartbeat("nobody", at_ms=5_000) == []


async def test_heartbeat_renews_the_lease(store: SqliteStore) -> None:
    await insert(store, job_key())
    await start(store, job_key(), owner="a", at_ms=1_000)

    await store.heartbeat("a", at_ms=9_000)

    assert await store.fail_expired(lease_ms=5_000, at_ms=10_000, error=EXECUTOR_LOST) == []


async def test_fail_expired_fails_only_expired_in_progress_jobs_of_any_owner(store: SqliteStore) -> None:
    for name, owner, at_ms in [("stale-a", "a", 1_000), ("stale-b", "b", 2_000), ("fresh", "a", 8_000)]:
        await insert(store, job_key(name))
        await start(store, job_key(name), owner=owner, at_ms=at_ms)
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


async def test_reopening_keeps_the_data_and_applies_no_migration_twice(db_path: Path) -> None:
    first = SqliteStore(str(db_path))
    await first.open()
    record = await insert(first, job_key())
    await first.close()
    applied_before = read_schema_migrations(db_path)

    second = SqliteStore(str(db_path))
    await second.open()
    try:
        assert await second.get(job_key()) == record
    finally:
        await second.close()

    assert read_schema_migrations(db_path) == applied_before
    assert [version for version, _ in applied_before] == [migration.version for migration in MIGRATIONS]


async def test_migrate_applies_the_pending_migrations_once_without_opening(db_path: Path) -> None:
    create_database_at_migration(db_path, MIGRATIONS[:1])
    store = SqliteStore(str(db_path))

    await store.migrate()
    applied = read_schema_migrations(db_path)
    await store.migrate()

    assert [version for version, _ in applied] == [migration.version for migration in MIGRATIONS]
    assert read_schema_migrations(db_path) == applied
    with pytest.raises(StoreError, match="not open"):
        await store.get(job_key())


def read_schema_migrations(db_path: Path) -> list[tuple[int, int]]:
    with sqlite3.connect(db_path) as connection:
        rows: list[tuple[int, int]] = connection.execute(
            "SELECT version, applied_at_ms FROM schema_migrations ORDER BY version"
        ).fetchall()
    connection.close()
    return rows


async def test_in_memory_database_works() -> None:
    store = SqliteStore(":memory:")
    await store.open()
    try:
        record = await insert(store, job_key())
        assert await store.get(job_key()) == record
    finally:
        await store.close()


async def test_opening_an_unreachable_path_is_a_store_error(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "missing-directory" / "jobs.db"))

    with pytest.raises(StoreError) as raised:
        await store.open()

    assert isinstance(raised.value.__cause__, sqlite3.Error)


async def test_using_a_store_that_is_not_open_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="not open"):
        await SqliteStore(":memory:").get(job_key())


@pytest.mark.parametrize("error", [HANDLER_FAILED, EXECUTOR_LOST])
def test_the_error_column_holds_the_proto3_json_of_error_details(error: ErrorDetails) -> None:
    text = error_to_column(error)

    assert json_format.Parse(text, pb.ErrorDetails()) == details_to_pb(error)
    assert error_from_column(text) == error


async def test_every_error_field_survives_the_store(store: SqliteStore, db_path: Path) -> None:
    key = job_key()
    await insert(store, key)
    await start(store, key)

    failed = await store.transition(key, {IN_PROGRESS}, FAILED, at_ms=3_000, error=HANDLER_FAILED)

    assert failed is not None
    assert failed.error == HANDLER_FAILED
    assert json.loads(read_error_column(db_path, key)) == HANDLER_FAILED_COLUMN


def read_error_column(db_path: Path, key: JobKey) -> str:
    with sqlite3.connect(db_path) as connection:
        (text,) = connection.execute(
            "SELECT error FROM job_instances WHERE job_instance_id = ?", (key.job_instance_id,)
        ).fetchone()
    connection.close()
    assert isinstance(text, str)
    return text


OLD_CAMEL_CASE_ERRORS = {
    "User": ErrorSource.USER,
    "System": ErrorSource.SYSTEM,
    "External": ErrorSource.EXTERNAL,
}


async def test_migration_0003_converts_camel_case_errors_to_proto3_json(db_path: Path) -> None:
    create_database_at_migration(db_path, [migration for migration in MIGRATIONS if migration.version <= 2])
    with sqlite3.connect(db_path) as connection:
        for old_source in OLD_CAMEL_CASE_ERRORS:
            connection.execute(
                "INSERT INTO job_instances (tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, "
                "status, invoke_type, creation_payload, create_time_ms, end_time_ms, error) "
                "VALUES ('t1', 'w1', 'Org.Workload.Item', 'i1', 'Refresh', ?, 'Failed', 'Manual', '{}', 1, 2, ?)",
                (old_source, old_camel_case_error(old_source)),
            )
        connection.execute(
            "INSERT INTO job_instances (tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, "
            "status, invoke_type, creation_payload, create_time_ms) "
            "VALUES ('t1', 'w1', 'Org.Workload.Item', 'i1', 'Refresh', 'no-error', 'NotStarted', 'Manual', '{}', 1)"
        )
    connection.close()

    store = SqliteStore(str(db_path))
    await store.open()
    try:
        for old_source, source in OLD_CAMEL_CASE_ERRORS.items():
            record = await store.get(job_key(old_source))
            assert record is not None
            assert record.error == dataclasses.replace(HANDLER_FAILED, source=source)
            column = read_error_column(db_path, job_key(old_source))
            assert json_format.Parse(column, pb.ErrorDetails()) == details_to_pb(record.error)
        unfailed = await store.get(job_key("no-error"))
        assert unfailed is not None
        assert unfailed.error is None
    finally:
        await store.close()
    assert [version for version, _ in read_schema_migrations(db_path)] == [1, 2, 3]


def create_database_at_migration(db_path: Path, migrations: list[Migration]) -> None:
    with sqlite3.connect(db_path) as connection:
        connection.execute(QUERIES["create_schema_migrations"])
        for migration in migrations:
            connection.executescript(migration.script)
            connection.execute(QUERIES["record_migration"], {"version": migration.version, "applied_at_ms": 0})
    connection.close()


def old_camel_case_error(source: str) -> str:
    """The error column as migrations 0001 and 0002 left it: Fabric's REST camelCase, every field written."""
    first, second = HANDLER_FAILED_COLUMN["moreDetails"]
    second_with_every_field = {**second, "messageParameters": [], "additionalParameters": []}
    document = {**HANDLER_FAILED_COLUMN, "source": source, "moreDetails": [first, second_with_every_field]}
    return json.dumps(document, separators=(",", ":"))


PLAN_PARAMS: dict[str, object] = {
    **dataclasses.asdict(job_key()),
    "expected_statuses": '["InProgress"]',
    "new_status": "Completed",
    "status": "NotStarted",
    "statuses": '["InProgress"]',
    "at_ms": 1,
    "lease_ms": 1,
    "owner": "a",
    "error": None,
    "limit": 10,
    "after_create_time_ms": 5,
    "after_job_instance_id": "j",
    "after_workspace_id": "w",
    "after_item_type": "t",
    "after_item_id": "i",
    "after_job_type": "r",
}


def query_plan(db_path: Path, query: str, params: dict[str, object]) -> list[str]:
    with sqlite3.connect(db_path) as connection:
        plan = [row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {QUERIES[query]}", params)]
    connection.close()
    return plan


@pytest.mark.parametrize(
    "query", ["get_job", "move_to_in_progress", "move_to_terminal", "move_to_not_started", "cancel"]
)
async def test_key_lookups_use_the_primary_key(store: SqliteStore, db_path: Path, query: str) -> None:
    plan = query_plan(db_path, query, PLAN_PARAMS)

    table_steps = [step for step in plan if " job_instances" in step]
    assert table_steps == [
        "SEARCH job_instances USING PRIMARY KEY (tenant_id=? AND workspace_id=? AND item_type=? AND item_id=? "
        "AND job_type=? AND job_instance_id=?)"
    ]


@pytest.mark.parametrize("statuses", [None, '["InProgress","NotStarted"]'])
async def test_list_searches_the_tenant_index_without_sorting(
    store: SqliteStore, db_path: Path, statuses: str | None
) -> None:
    plan = query_plan(db_path, "list_jobs", {**PLAN_PARAMS, "workspace_id": None, "statuses": statuses})

    assert plan[0].startswith(
        "SEARCH job_instances USING INDEX job_instances_by_tenant_newest_first (tenant_id=? AND (create_time_ms,"
    )
    assert not any(step.startswith("SCAN job_instances") or "TEMP B-TREE" in step for step in plan)


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("keys_with_status", "COVERING INDEX job_instances_by_status_oldest_first (status=?)"),
        ("cancel_requested_of_owner", "INDEX job_instances_cancel_requested_by_owner (owner=?)"),
    ],
)
async def test_status_scans_search_an_index(store: SqliteStore, db_path: Path, query: str, index: str) -> None:
    plan = query_plan(db_path, query, PLAN_PARAMS)

    assert plan == [f"SEARCH job_instances USING {index}"]


async def test_fail_expired_searches_running_jobs_and_looks_up_each_owner_lease(
    store: SqliteStore, db_path: Path
) -> None:
    plan = query_plan(db_path, "fail_expired", PLAN_PARAMS)

    assert plan == [
        "SEARCH job_instances USING INDEX job_instances_by_status_oldest_first (status=?)",
        "CORRELATED SCALAR SUBQUERY 1",
        "SEARCH lease USING PRIMARY KEY (owner=?)",
    ]
