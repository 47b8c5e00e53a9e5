"""What the store tests share: job keys, errors as the store keeps them, small steps, and raw SQL beside the store."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any

import psycopg

from fabric_jobs.errors import ErrorDetails, ErrorSource, ExtendedInfo
from fabric_jobs.server.model import InvokeType, JobKey, JobRecord, JobStatus, NewJob
from fabric_jobs.server.store import JobStore

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


async def insert(store: JobStore, key: JobKey, create_time_ms: int = 1_000) -> JobRecord:
    record, created = await store.insert(new_job(key, create_time_ms))
    assert created
    return record


async def start(store: JobStore, key: JobKey, *, owner: str = "worker-a", at_ms: int = 2_000) -> JobRecord:
    record = await store.transition(key, {NOT_STARTED}, IN_PROGRESS, at_ms=at_ms, owner=owner)
    assert record is not None
    return record


async def insert_after_opening(store: JobStore) -> JobRecord:
    """Open the store, insert job_key() and read it back, close: the store works on its database."""
    await store.open()
    try:
        record = await insert(store, job_key())
        assert await store.get(job_key()) == record
        return record
    finally:
        await store.close()


async def status_of(store: JobStore, key: JobKey) -> JobStatus:
    record = await store.get(key)
    assert record is not None
    return record.status


def sqlite_url(path: object) -> str:
    return f"sqlite:///{path}"


async def run_sql(url: str, statement: str) -> list[tuple[Any, ...]]:
    """Run one statement on the database of `url` (sqlite:/// or postgresql://) on a connection of its own,
    committed; its rows, if it returns any."""
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as connection, connection:
            rows: list[tuple[Any, ...]] = connection.execute(statement).fetchall()
            return rows
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as pg_connection:
        cursor = await pg_connection.execute(statement.encode())
        return await cursor.fetchall() if cursor.description is not None else []


async def applied_migrations(url: str) -> list[tuple[int, int]]:
    """(version, applied_at_ms) of each migration applied, oldest first."""
    rows = await run_sql(url, "SELECT version, applied_at_ms FROM schema_migrations ORDER BY version")
    return [(version, applied_at_ms) for version, applied_at_ms in rows]
