"""What only the SQLite store has: an embedded file migrated on open, the 0003 data migration, its query plans."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from google.protobuf import json_format

from fabric_jobs.errors import ErrorSource, details_to_pb
from fabric_jobs.server.store import JobStore, StoreError
from fabric_jobs.server.store.migrations import Migration
from fabric_jobs.server.store.sqlite import MIGRATIONS, MINIMUM_SQLITE_VERSION, QUERIES, SqliteConnector
from fabric_jobs.v1 import job_service_pb2 as pb
from tests.server.store_data import (
    HANDLER_FAILED,
    HANDLER_FAILED_COLUMN,
    applied_migrations,
    insert_after_opening,
    job_key,
    run_sql,
    sqlite_url,
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "jobs.db"


@pytest.fixture
async def migrated_db_path(db_path: Path) -> Path:
    await JobStore(SqliteConnector(str(db_path))).migrate()
    return db_path


def test_the_sqlite_library_is_new_enough_for_returning() -> None:
    assert sqlite3.sqlite_version_info >= MINIMUM_SQLITE_VERSION


async def test_migrate_applies_only_the_pending_migrations(db_path: Path) -> None:
    create_database_at_migration(db_path, MIGRATIONS[:1])
    store = JobStore(SqliteConnector(str(db_path)))

    await store.migrate()

    applied = await applied_migrations(sqlite_url(db_path))
    assert [version for version, _ in applied] == [migration.version for migration in MIGRATIONS]
    assert applied[0] == (MIGRATIONS[0].version, 0)
    await insert_after_opening(store)


async def test_in_memory_database_works() -> None:
    await insert_after_opening(JobStore(SqliteConnector(":memory:")))


async def test_opening_an_unreachable_path_is_a_store_error(tmp_path: Path) -> None:
    store = JobStore(SqliteConnector(str(tmp_path / "missing-directory" / "jobs.db")))

    with pytest.raises(StoreError) as raised:
        await store.open()

    assert isinstance(raised.value.__cause__, sqlite3.Error)


OLD_CAMEL_CASE_ERRORS = {
    "User": ErrorSource.USER,
    "System": ErrorSource.SYSTEM,
    "External": ErrorSource.EXTERNAL,
}


async def test_migration_0003_converts_camel_case_errors_to_proto3_json(db_path: Path) -> None:
    create_database_at_migration(db_path, [migration for migration in MIGRATIONS if migration.version <= 2])
    with closing(sqlite3.connect(db_path)) as connection, connection:
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

    store = JobStore(SqliteConnector(str(db_path)))
    await store.open()
    try:
        for old_source, source in OLD_CAMEL_CASE_ERRORS.items():
            record = await store.get(job_key(old_source))
            assert record is not None
            assert record.error == dataclasses.replace(HANDLER_FAILED, source=source)
            [(column,)] = await run_sql(
                sqlite_url(db_path), f"SELECT error FROM job_instances WHERE job_instance_id = '{old_source}'"
            )
            assert json_format.Parse(column, pb.ErrorDetails()) == details_to_pb(record.error)
        unfailed = await store.get(job_key("no-error"))
        assert unfailed is not None
        assert unfailed.error is None
    finally:
        await store.close()
    assert [version for version, _ in await applied_migrations(sqlite_url(db_path))] == [m.version for m in MIGRATIONS]


def create_database_at_migration(db_path: Path, migrations: list[Migration]) -> None:
    with closing(sqlite3.connect(db_path)) as connection, connection:
        connection.execute(QUERIES["create_schema_migrations"])
        for migration in migrations:
            connection.executescript(migration.script)
            connection.execute(QUERIES["record_migration"], {"version": migration.version, "applied_at_ms": 0})


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
    "timeout_error": None,
    "before_ms": 1,
    "limit": 10,
    "after_create_time_ms": 5,
    "after_job_instance_id": "j",
    "after_workspace_id": "w",
    "after_item_type": "t",
    "after_item_id": "i",
    "after_job_type": "r",
}


def query_plan(db_path: Path, query: str, params: dict[str, object]) -> list[str]:
    with closing(sqlite3.connect(db_path)) as connection:
        return [row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {QUERIES[query]}", params)]


@pytest.mark.parametrize(
    "query",
    [
        "get_job",
        "move_to_in_progress",
        "move_to_terminal",
        "move_to_not_started",
        "cancel",
        "expire_start_deadline_of_job",
        "fail_lost_job",
    ],
)
def test_key_lookups_use_the_primary_key(migrated_db_path: Path, query: str) -> None:
    plan = query_plan(migrated_db_path, query, PLAN_PARAMS)

    table_steps = [step for step in plan if " job_instances" in step]
    assert table_steps == [
        "SEARCH job_instances USING PRIMARY KEY (tenant_id=? AND workspace_id=? AND item_type=? AND item_id=? "
        "AND job_type=? AND job_instance_id=?)"
    ]


@pytest.mark.parametrize("statuses", [None, '["InProgress","NotStarted"]'])
def test_list_searches_the_tenant_index_without_sorting(migrated_db_path: Path, statuses: str | None) -> None:
    plan = query_plan(migrated_db_path, "list_jobs", {**PLAN_PARAMS, "workspace_id": None, "statuses": statuses})

    assert plan[0].startswith(
        "SEARCH job_instances USING INDEX job_instances_by_tenant_newest_first (tenant_id=? AND (create_time_ms,"
    )
    assert not any(step.startswith("SCAN job_instances") or "TEMP B-TREE" in step for step in plan)


@pytest.mark.parametrize("statuses", [None, '["InProgress","NotStarted"]'])
def test_search_walks_the_cross_tenant_index_without_sorting(migrated_db_path: Path, statuses: str | None) -> None:
    params = {
        **PLAN_PARAMS,
        "tenant_id": None,
        "workspace_id": None,
        "job_instance_id": None,
        "created_since_ms": None,
        "statuses": statuses,
        "after_tenant_id": "t",
    }
    plan = query_plan(migrated_db_path, "search_jobs", params)

    assert plan[0].startswith("SEARCH job_instances USING INDEX job_instances_newest_first ((create_time_ms,"), plan
    assert not any(step.startswith("SCAN job_instances") or "TEMP B-TREE" in step for step in plan), plan


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("cancel_requested_of_owner", "INDEX job_instances_cancel_requested_by_owner (owner=?)"),
    ],
)
def test_status_scans_search_an_index(migrated_db_path: Path, query: str, index: str) -> None:
    plan = query_plan(migrated_db_path, query, PLAN_PARAMS)

    assert plan == [f"SEARCH job_instances USING {index}"]


@pytest.mark.parametrize(
    ("query", "plan"),
    [
        ("queued_in_turn", ["SCAN job_instances USING INDEX job_instances_queued_in_turn"]),
        (
            "claim_within_cap",
            [
                "SEARCH job_instances USING PRIMARY KEY (tenant_id=? AND workspace_id=? AND item_type=? AND item_id=? "
                "AND job_type=? AND job_instance_id=?)",
                "SCALAR SUBQUERY 2",
                "CO-ROUTINE (subquery-1)",
                "SEARCH running USING INDEX job_instances_running_by_tenant (tenant_id=?)",
                "SCAN (subquery-1)",
                "CORRELATED SCALAR SUBQUERY 4",
                "CO-ROUTINE (subquery-3)",
                "SEARCH older USING INDEX job_instances_queued_by_tenant (tenant_id=? AND start_turn<?)",
                "SCAN (subquery-3)",
            ],
        ),
        (
            "startable_of_tenant",
            [
                "SCALAR SUBQUERY 1",
                "SEARCH job_instances USING INDEX job_instances_running_by_tenant (tenant_id=?)",
                "SEARCH job_instances USING INDEX job_instances_queued_by_tenant (tenant_id=?)",
                "USE TEMP B-TREE FOR RIGHT PART OF ORDER BY",
            ],
        ),
    ],
)
def test_the_queue_in_turn_and_the_cap_read_only_queued_or_running_rows(
    migrated_db_path: Path, query: str, plan: list[str]
) -> None:
    """The partial indexes of migration 0070 hold only the NotStarted (or InProgress) rows: no history is read."""
    params = {**PLAN_PARAMS, "max_running": 2, "limit": 10}
    assert query_plan(migrated_db_path, query, params) == plan


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("expire_start_deadlines", "job_instances_not_started_by_start_deadline (status=? AND start_deadline_ms>?"),
        ("time_out_overdue", "job_instances_in_progress_by_run_deadline (status=? AND run_deadline_ms>?"),
    ],
)
def test_deadline_sweeps_search_their_index(migrated_db_path: Path, query: str, index: str) -> None:
    plan = query_plan(migrated_db_path, query, PLAN_PARAMS)

    assert plan[0].startswith("SEARCH job_instances USING PRIMARY KEY"), plan
    assert any(f"INDEX {index}" in step for step in plan), plan
    assert not any(step.startswith("SCAN job_instances") for step in plan), plan


def test_fail_expired_searches_running_jobs_and_looks_up_each_owner_lease(migrated_db_path: Path) -> None:
    plan = query_plan(migrated_db_path, "fail_expired", PLAN_PARAMS)

    assert plan == [
        "SEARCH job_instances USING INDEX job_instances_by_status_oldest_first (status=?)",
        "CORRELATED SCALAR SUBQUERY 1",
        "SEARCH lease USING PRIMARY KEY (owner=?)",
    ]


def test_a_jobs_history_is_read_through_its_index_in_order(migrated_db_path: Path) -> None:
    plan = query_plan(migrated_db_path, "transitions_of_job", PLAN_PARAMS)

    assert plan == ["SEARCH job_transitions USING INDEX job_transitions_by_key (job_instance_id=?)"]
