"""The JobStore behaviour, on SQLite and on PostgreSQL alike: every test runs on a fresh database of each."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from google.protobuf import json_format

from fabric_jobs.errors import ErrorDetails, details_to_pb
from fabric_jobs.identity import Caller
from fabric_jobs.server.backend import open_store
from fabric_jobs.server.model import InvokeType, JobKey, JobRecord, JobStatus, NewJob, Transition
from fabric_jobs.server.store import JobFilter, JobStore, ListQuery, SearchQuery, StoreError, postgresql, sqlite
from fabric_jobs.server.store.error_column import error_from_column, error_to_column
from fabric_jobs.server.store.page_token import decode_page_token, encode_page_token
from fabric_jobs.server.store.postgresql import PostgresConnector
from fabric_jobs.v1 import job_service_pb2 as pb
from tests.server.store_data import (
    CANCELLED,
    COMPLETED,
    EXECUTOR_LOST,
    FAILED,
    HANDLER_FAILED,
    HANDLER_FAILED_COLUMN,
    IN_PROGRESS,
    NOT_STARTED,
    applied_migrations,
    insert,
    insert_after_opening,
    job_key,
    new_job,
    run_sql,
    sqlite_url,
    start,
    status_of,
)

T = TypeVar("T")

DIALECTS = ["sqlite", "postgresql"]


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    dialect: str = request.param
    return dialect


@pytest.fixture
def store_url(dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, migrated database, dropped after the test."""
    if dialect == "sqlite":
        url = sqlite_url(tmp_path / "jobs.db")
        asyncio.run(open_store(url).migrate())
        return url
    postgres_url: str = request.getfixturevalue("postgres_url")
    return postgres_url


@pytest.fixture
def empty_store_url(dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh database without any table, dropped after the test."""
    if dialect == "sqlite":
        return sqlite_url(tmp_path / "empty.db")
    url: str = request.getfixturevalue("unmigrated_postgres_url")
    return url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[JobStore]:
    opened = open_store(store_url)
    await opened.open()
    yield opened
    await opened.close()


async def on_stores_at_once(
    url: str, count: int, action: Callable[[JobStore], Awaitable[T]], *, opened: bool = True
) -> list[T]:
    """`action` on `count` store objects of one database, each on its own thread and event loop and released
    together: concurrent on SQLite too, whose store runs its statements on the calling thread."""
    ready = threading.Barrier(count)

    async def act() -> T:
        store = open_store(url)
        if opened:
            await store.open()
        try:
            ready.wait(timeout=10)
            return await action(store)
        finally:
            await store.close()

    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=count) as threads:
        return list(await asyncio.gather(*(loop.run_in_executor(threads, asyncio.run, act()) for _ in range(count))))


async def test_insert_then_get_returns_every_field(store: JobStore) -> None:
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


async def test_insert_of_an_existing_key_returns_the_existing_record(store: JobStore) -> None:
    key = job_key()
    first = await insert(store, key)
    started = await start(store, key)

    again, created = await store.insert(NewJob(key, InvokeType.SCHEDULED, '{"other":true}', 9_999))

    assert not created
    assert again == started
    assert again.creation_payload == first.creation_payload


async def test_concurrent_inserts_of_one_key_create_it_once(store_url: str) -> None:
    results = await on_stores_at_once(store_url, 4, lambda store: store.insert(new_job(job_key())))

    assert sorted(created for _, created in results) == [False, False, False, True]
    assert len({record for record, _ in results}) == 1


async def test_a_key_differing_in_any_field_is_another_job(store: JobStore) -> None:
    key = job_key()
    await insert(store, key)

    for field in [field.name for field in dataclasses.fields(JobKey)]:
        other = dataclasses.replace(key, **{field: "different"})
        assert await store.get(other) is None, field
        assert await store.transition(other, {NOT_STARTED}, CANCELLED, at_ms=5) is None, field
        assert await store.cancel(other, at_ms=5) is None, field
        _, created = await store.insert(new_job(other))
        assert created, field

    assert await status_of(store, key) is NOT_STARTED


async def test_transition_to_in_progress_sets_start_time_owner_and_version(store: JobStore) -> None:
    key = job_key()
    await insert(store, key)

    started = await start(store, key, owner="worker-a", at_ms=2_000)

    assert started.status is IN_PROGRESS
    assert started.start_time_ms == 2_000
    assert started.end_time_ms is None
    assert started.owner == "worker-a"
    assert started.version == 2
    assert await store.get(key) == started


async def test_transition_from_an_unexpected_status_changes_nothing(store: JobStore) -> None:
    key = job_key()
    inserted = await insert(store, key)

    assert await store.transition(key, {IN_PROGRESS}, COMPLETED, at_ms=3_000) is None
    assert await store.transition(key, set(), IN_PROGRESS, at_ms=3_000, owner="w") is None
    assert await store.get(key) == inserted


async def test_transition_of_a_missing_key_returns_none(store: JobStore) -> None:
    assert await store.transition(job_key(), {NOT_STARTED}, IN_PROGRESS, at_ms=1, owner="w") is None


async def test_terminal_transition_sets_end_time_keeps_start_time_and_stores_the_error(store: JobStore) -> None:
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


async def test_cancel_before_start_ends_without_start_time(store: JobStore) -> None:
    key = job_key()
    await insert(store, key)

    cancelled = await store.transition(key, {NOT_STARTED, IN_PROGRESS}, CANCELLED, at_ms=1_500)

    assert cancelled is not None
    assert (cancelled.status, cancelled.start_time_ms, cancelled.end_time_ms) == (CANCELLED, None, 1_500)
    assert cancelled.error is None


async def test_the_first_terminal_write_wins(store: JobStore) -> None:
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


async def test_racing_terminal_writes_have_exactly_one_winner(dialect: str, store_url: str) -> None:
    store = (
        JobStore(PostgresConnector(store_url, min_size=8, max_size=8))
        if dialect == "postgresql"
        else open_store(store_url)
    )
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


async def test_transition_back_to_not_started_clears_the_start(store: JobStore) -> None:
    key = job_key()
    await insert(store, key)
    await start(store, key)

    requeued = await store.transition(key, {IN_PROGRESS}, NOT_STARTED, at_ms=3_000)

    assert requeued is not None
    assert (requeued.status, requeued.start_time_ms, requeued.owner, requeued.version) == (NOT_STARTED, None, None, 3)


async def test_cancel_ends_a_queued_job_cancelled(store: JobStore) -> None:
    key = job_key()
    before = await insert(store, key)

    cancelled = await store.cancel(key, at_ms=1_500)

    assert cancelled == dataclasses.replace(
        before, status=CANCELLED, end_time_ms=1_500, cancel_requested=True, version=before.version + 1
    )
    assert await store.cancel(key, at_ms=9_000) == cancelled
    assert await store.get(key) == cancelled


async def test_cancel_marks_a_running_job_once(store: JobStore) -> None:
    key = job_key()
    await insert(store, key)
    before = await start(store, key)

    requested = await store.cancel(key, at_ms=3_000)
    repeated = await store.cancel(key, at_ms=4_000)

    assert requested == dataclasses.replace(before, cancel_requested=True, version=before.version + 1)
    assert repeated == requested
    assert await store.get(key) == requested


async def test_cancel_leaves_a_terminal_job_unchanged(store: JobStore) -> None:
    for status in [COMPLETED, FAILED, CANCELLED]:
        key = job_key(status.value)
        await insert(store, key)
        await start(store, key)
        ended = await store.transition(key, {IN_PROGRESS}, status, at_ms=3_000)

        assert ended is not None
        assert await store.cancel(key, at_ms=4_000) == ended


async def test_cancel_of_a_missing_key_returns_none(store: JobStore) -> None:
    assert await store.cancel(job_key(), at_ms=1_000) is None


async def test_list_is_newest_first_within_one_tenant(store: JobStore) -> None:
    await insert(store, job_key("old"), create_time_ms=1)
    await insert(store, job_key("new"), create_time_ms=3)
    await insert(store, job_key("mid"), create_time_ms=2)
    await insert(store, job_key("other-tenant", tenant="t2"), create_time_ms=4)

    page, token = await store.list(ListQuery(tenant_id="t1"))

    assert [record.key.job_instance_id for record in page] == ["new", "mid", "old"]
    assert token is None


async def test_list_filters_combine(store: JobStore) -> None:
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


ALL_OF_T1 = ListQuery(tenant_id="t1")
IN_PROGRESS_OF_T1 = ListQuery(tenant_id="t1", item_type="Org.Workload.Item", statuses=frozenset({IN_PROGRESS}))


async def test_paging_visits_every_record_once_in_order(store: JobStore) -> None:
    keys = [job_key(f"j{n % 4}", workspace=f"w{n % 3}", item_id=f"i{n // 12}") for n in range(36)]
    for n, key in enumerate(keys):
        await insert(store, key, create_time_ms=100 + n // 5)
        if n % 3 == 0:
            await start(store, key)

    for query, records, page_sizes in [(ALL_OF_T1, 36, [5] * 7 + [1]), (IN_PROGRESS_OF_T1, 12, [5, 5, 2])]:
        pages = await read_every_page(store, query, page_size=5)
        everything, _ = await store.list(dataclasses.replace(query, page_size=1000))

        assert [len(page) for page in pages] == page_sizes
        assert [record for page in pages for record in page] == everything
        assert len({record.key for record in everything}) == records
        assert {record.status for record in everything} == (query.statuses or {NOT_STARTED, IN_PROGRESS})
        sort_keys = [(r.create_time_ms, r.key.job_instance_id, r.key.workspace_id, r.key.item_id) for r in everything]
        assert sort_keys == sorted(sort_keys, reverse=True)


async def read_every_page(store: JobStore, query: ListQuery, page_size: int) -> list[list[JobRecord]]:
    """The pages of `query` in order, checking that each token names the last record of its page."""
    pages: list[list[JobRecord]] = []
    token: str | None = None
    while True:
        page, token = await store.list(dataclasses.replace(query, page_size=page_size, page_token=token))
        pages.append(page)
        if token is None:
            return pages
        last = page[-1]
        assert decode_page_token(token) == (
            last.create_time_ms,
            last.key.job_instance_id,
            last.key.workspace_id,
            last.key.item_type,
            last.key.item_id,
            last.key.job_type,
        )


async def test_list_orders_text_by_code_point(store: JobStore) -> None:
    for instance in ["a", "B", "b", "Z", "é", "_"]:
        await insert(store, job_key(instance), create_time_ms=1)

    page, _ = await store.list(ListQuery(tenant_id="t1"))

    assert [record.key.job_instance_id for record in page] == sorted(["a", "B", "b", "Z", "é", "_"], reverse=True)


async def test_a_full_last_page_has_no_next_token(store: JobStore) -> None:
    for n in range(4):
        await insert(store, job_key(f"j{n}"), create_time_ms=n)

    first, token = await store.list(ListQuery(tenant_id="t1", page_size=2))
    second, last_token = await store.list(ListQuery(tenant_id="t1", page_size=2, page_token=token))

    assert token is not None
    assert len(first) == len(second) == 2
    assert last_token is None


NOT_ISSUED_TOKENS = [
    "not base64 at all!",
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    base64.urlsafe_b64encode(b"{not json").decode(),
    base64.urlsafe_b64encode(b'{"a":1}').decode(),
    base64.urlsafe_b64encode(b'["1","a","b","c","d","e"]').decode(),
    base64.urlsafe_b64encode(b'[1,"a","b"]').decode(),
    encode_page_token((2**63, "a", "b", "c", "d", "e")),
]


@pytest.mark.parametrize("token", NOT_ISSUED_TOKENS)
def test_a_page_token_it_did_not_issue_does_not_decode(token: str) -> None:
    with pytest.raises(ValueError, match="invalid page token"):
        decode_page_token(token)


async def test_listing_from_a_page_token_it_did_not_issue_is_a_value_error(store: JobStore) -> None:
    for token in NOT_ISSUED_TOKENS:
        with pytest.raises(ValueError, match="invalid page token"):
            await store.list(ListQuery(tenant_id="t1", page_token=token))


async def test_a_page_size_below_one_is_a_value_error(store: JobStore) -> None:
    with pytest.raises(ValueError, match="page_size"):
        await store.list(ListQuery(tenant_id="t1", page_size=0))


async def test_queued_jobs_come_in_turn_then_oldest_first_and_limited(store: JobStore) -> None:
    await insert(store, job_key("c"), create_time_ms=3)
    await insert(store, job_key("a", tenant="t2"), create_time_ms=1)
    await insert(store, job_key("b"), create_time_ms=2)
    await insert(store, job_key("running"), create_time_ms=0)
    await start(store, job_key("running"))

    queued = await store.queued_in_turn(10)

    # t1's jobs take turns 0, 1, (2 for the one started); t2's first job starts beside t1's first.
    assert [(job.key, job.start_turn) for job in queued] == [
        (job_key("a", tenant="t2"), 0),
        (job_key("c"), 0),
        (job_key("b"), 1),
    ]
    assert [job.key for job in await store.queued_in_turn(2)] == [job_key("a", tenant="t2"), job_key("c")]


async def test_a_tenant_turn_follows_its_last_queued_job_and_never_precedes_the_first(store: JobStore) -> None:
    for name in ("a1", "a2", "a3"):
        await insert(store, job_key(name, tenant="A"))
    await start(store, job_key("a1", tenant="A"))
    await insert(store, job_key("b1", tenant="B"))
    await insert(store, job_key("a4", tenant="A"))

    turns = {job.key.job_instance_id: job.start_turn for job in await store.queued_in_turn(10)}

    assert turns == {"a2": 1, "a3": 2, "b1": 1, "a4": 3}


async def claim(store: JobStore, key: JobKey, max_running: int) -> JobRecord | None:
    return await store.transition(key, {NOT_STARTED}, IN_PROGRESS, at_ms=2_000, owner="w", max_running=max_running)


async def test_a_claim_under_a_cap_takes_the_tenants_oldest_places_only(store: JobStore) -> None:
    for number in range(4):
        await insert(store, job_key(f"a{number}", tenant="A"), create_time_ms=1_000 + number)
    await insert(store, job_key("b0", tenant="B"))

    assert await claim(store, job_key("a2", tenant="A"), 2) is None, "two older jobs take the two places"
    assert await claim(store, job_key("a1", tenant="A"), 2) is not None
    assert await claim(store, job_key("a0", tenant="A"), 2) is not None
    assert await claim(store, job_key("a2", tenant="A"), 2) is None, "the cap is reached"
    assert await claim(store, job_key("b0", tenant="B"), 2) is not None, "another tenant has its own places"
    assert (await store.get(job_key("a2", tenant="A"))).status is NOT_STARTED  # type: ignore[union-attr]

    await store.transition(job_key("a0", tenant="A"), {IN_PROGRESS}, COMPLETED, at_ms=3_000)
    startable = await store.startable_within_cap(2, 10, "A")
    assert [job.key for job in startable] == [job_key("a2", tenant="A")], "the oldest waiting job, one place free"
    assert await claim(store, job_key("a3", tenant="A"), 2) is None, "a2 is older"
    assert await claim(store, job_key("a2", tenant="A"), 2) is not None
    assert await store.startable_within_cap(2, 10) == []


async def test_concurrent_claims_never_exceed_the_cap(store_url: str, store: JobStore) -> None:
    keys = [job_key(f"j{number:02}", tenant="A") for number in range(12)]
    for key in keys:
        await insert(store, key)

    async def claim_any(each: JobStore) -> int:
        return sum([await claim(each, key, 3) is not None for key in keys])

    claimed = await on_stores_at_once(store_url, 6, claim_any)

    assert sum(claimed) == 3
    assert (await store.count_by_status(JobFilter(tenant_id="A")))[IN_PROGRESS] == 3


async def test_heartbeat_returns_the_cancel_requested_jobs_of_that_owner_only(store: JobStore) -> None:
    for name, owner in [("a1", "a"), ("a2", "a"), ("b1", "b")]:
        await insert(store, job_key(name))
        await start(store, job_key(name), owner=owner)
    await insert(store, job_key("queued"))
    for name in ["a2", "b1", "queued"]:
        await store.cancel(job_key(name), at_ms=4_000)

    assert await store.heartbeat("a", at_ms=5_000) == [job_key("a2")]
    assert await store.heartbeat("b", at_ms=5_000) == [job_key("b1")]
    assert await store.heartbeat("nobody", at_ms=5_000) == []


async def test_heartbeat_renews_the_lease(store: JobStore) -> None:
    await insert(store, job_key())
    await start(store, job_key(), owner="a", at_ms=1_000)

    await store.heartbeat("a", at_ms=9_000)

    assert await store.fail_expired(lease_ms=5_000, at_ms=10_000, error=EXECUTOR_LOST) == []
    assert await store.fail_expired(lease_ms=5_000, at_ms=14_001, error=EXECUTOR_LOST) != []


async def test_fail_expired_fails_only_expired_in_progress_jobs_of_any_owner(store: JobStore, store_url: str) -> None:
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
    assert await run_sql(store_url, "SELECT owner FROM executor_leases") == []


@pytest.mark.parametrize("error", [HANDLER_FAILED, EXECUTOR_LOST])
def test_the_error_column_holds_the_proto3_json_of_error_details(error: ErrorDetails) -> None:
    text = error_to_column(error)

    assert json_format.Parse(text, pb.ErrorDetails()) == details_to_pb(error)
    assert error_from_column(text) == error


async def test_every_error_field_survives_the_store(store: JobStore, store_url: str) -> None:
    key = job_key()
    await insert(store, key)
    await start(store, key)

    failed = await store.transition(key, {IN_PROGRESS}, FAILED, at_ms=3_000, error=HANDLER_FAILED)

    assert failed is not None
    assert failed.error == HANDLER_FAILED
    [(stored,)] = await run_sql(store_url, "SELECT error FROM job_instances")
    assert stored == error_to_column(HANDLER_FAILED)
    assert json.loads(stored) == HANDLER_FAILED_COLUMN


async def test_using_a_store_that_is_not_open_is_a_store_error(store_url: str) -> None:
    with pytest.raises(StoreError, match="not open"):
        await open_store(store_url).get(job_key())


MIGRATED_TABLES = {
    "job_instances": {
        "tenant_id",
        "workspace_id",
        "item_type",
        "item_id",
        "job_type",
        "job_instance_id",
        "status",
        "invoke_type",
        "creation_payload",
        "create_time_ms",
        "start_time_ms",
        "end_time_ms",
        "error",
        "cancel_requested",
        "owner",
        "heartbeat_ms",
        "version",
        "trace_context",
        "caller",
        "start_turn",
        "progress_percent",
        "progress_message",
        "progress_time_ms",
        "start_deadline_ms",
        "timeout_ms",
        "run_deadline_ms",
    },
    "job_credentials": {
        "tenant_id",
        "workspace_id",
        "item_type",
        "item_id",
        "job_type",
        "job_instance_id",
        "sealed",
    },
    "executor_leases": {"owner", "renewed_ms"},
    "schema_migrations": {"version", "applied_at_ms"},
    "job_transitions": {
        "seq",
        "tenant_id",
        "workspace_id",
        "item_type",
        "item_id",
        "job_type",
        "job_instance_id",
        "status",
        "cancel_requested",
        "at_ms",
        "progress",
    },
}
MIGRATED_PRIMARY_KEYS = {
    "job_instances": ["tenant_id", "workspace_id", "item_type", "item_id", "job_type", "job_instance_id"],
    "executor_leases": ["owner"],
    "schema_migrations": ["version"],
    "job_transitions": ["seq"],
    "job_credentials": ["tenant_id", "workspace_id", "item_type", "item_id", "job_type", "job_instance_id"],
}
MIGRATED_INDEXES = {
    "job_instances_by_tenant_newest_first",
    "job_instances_by_status_oldest_first",
    "job_instances_cancel_requested_by_owner",
    "job_instances_newest_first",
    "job_instances_ended_oldest_first",
    "job_instances_queued_in_turn",
    "job_instances_queued_by_tenant",
    "job_instances_running_by_tenant",
    "job_instances_not_started_by_start_deadline",
    "job_instances_in_progress_by_run_deadline",
    "job_transitions_by_key",
}
MIGRATED_SCHEMA = (MIGRATED_TABLES, MIGRATED_PRIMARY_KEYS, MIGRATED_INDEXES)
TABLE_NAMES = ", ".join(f"'{table}'" for table in MIGRATED_TABLES)
SCHEMA_QUERIES = {
    "sqlite": (
        f"SELECT m.name, p.name, p.pk FROM sqlite_master AS m, pragma_table_info(m.name) AS p "
        f"WHERE m.type = 'table' AND m.name IN ({TABLE_NAMES})",
        f"SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({TABLE_NAMES})",
    ),
    "postgresql": (
        f"SELECT c.table_name, c.column_name, coalesce(k.ordinal_position, 0) "
        f"FROM information_schema.columns AS c LEFT JOIN information_schema.key_column_usage AS k "
        f"ON k.table_schema = c.table_schema AND k.table_name = c.table_name AND k.column_name = c.column_name "
        f"AND k.constraint_name IN "
        f"(SELECT constraint_name FROM information_schema.table_constraints WHERE constraint_type = 'PRIMARY KEY') "
        f"WHERE c.table_schema = current_schema() AND c.table_name IN ({TABLE_NAMES})",
        f"SELECT i.relname FROM pg_index AS x JOIN pg_class AS i ON i.oid = x.indexrelid "
        f"JOIN pg_class AS t ON t.oid = x.indrelid WHERE t.relnamespace = current_schema()::regnamespace "
        f"AND NOT x.indisprimary AND t.relname IN ({TABLE_NAMES})",
    ),
}


async def schema_of(dialect: str, url: str) -> tuple[dict[str, set[str]], dict[str, list[str]], set[str]]:
    """The tables' columns, their primary keys (in key order) and the other indexes' names."""
    columns_query, indexes_query = SCHEMA_QUERIES[dialect]
    columns: dict[str, set[str]] = {}
    key_parts: dict[str, list[tuple[int, str]]] = {}
    for table, column, key_position in await run_sql(url, columns_query):
        columns.setdefault(table, set()).add(column)
        if key_position:
            key_parts.setdefault(table, []).append((key_position, column))
    primary_keys = {table: [column for _, column in sorted(parts)] for table, parts in key_parts.items()}
    return columns, primary_keys, {name for (name,) in await run_sql(url, indexes_query)}


async def test_migrations_give_the_schema_the_code_expects(dialect: str, empty_store_url: str) -> None:
    await open_store(empty_store_url).migrate()

    assert await schema_of(dialect, empty_store_url) == MIGRATED_SCHEMA
    expected = sqlite.MIGRATIONS if dialect == "sqlite" else postgresql.MIGRATIONS
    assert [version for version, _ in await applied_migrations(empty_store_url)] == [
        migration.version for migration in expected
    ]


async def test_migrate_twice_is_harmless(dialect: str, empty_store_url: str) -> None:
    store = open_store(empty_store_url)
    await store.migrate()
    applied = await applied_migrations(empty_store_url)
    record = await insert_after_opening(store)

    await store.migrate()
    await open_store(empty_store_url).migrate()

    assert await applied_migrations(empty_store_url) == applied
    assert await schema_of(dialect, empty_store_url) == MIGRATED_SCHEMA
    with pytest.raises(StoreError, match="not open"):
        await store.get(job_key())
    await store.open()
    try:
        assert await store.get(job_key()) == record
    finally:
        await store.close()


async def test_two_migrations_at_once_are_harmless(dialect: str, empty_store_url: str) -> None:
    await on_stores_at_once(empty_store_url, 2, lambda store: store.migrate(), opened=False)

    expected = sqlite.MIGRATIONS if dialect == "sqlite" else postgresql.MIGRATIONS
    assert [version for version, _ in await applied_migrations(empty_store_url)] == [
        migration.version for migration in expected
    ]
    assert await schema_of(dialect, empty_store_url) == MIGRATED_SCHEMA
    await insert_after_opening(open_store(empty_store_url))


async def test_a_schema_newer_than_the_code_is_refused_by_open_and_by_migrate(store_url: str) -> None:
    await run_sql(store_url, "INSERT INTO schema_migrations (version, applied_at_ms) VALUES (9999, 0)")
    store = open_store(store_url)

    with pytest.raises(StoreError, match=r"newer than this fabric-jobs \(it has migrations \[9999\]"):
        await store.open()
    with pytest.raises(StoreError, match="newer than this fabric-jobs"):
        await store.migrate()


async def test_search_spans_tenants_newest_first_and_filters_combine(store: JobStore) -> None:
    await insert(store, job_key("a", tenant="t1", workspace="w1"), create_time_ms=1)
    await insert(store, job_key("b", tenant="t2", workspace="w1"), create_time_ms=2)
    await insert(store, job_key("c", tenant="t2", workspace="w2", item_id="i2"), create_time_ms=3)
    await insert(store, job_key("d", tenant="t3"), create_time_ms=4)
    await start(store, job_key("d", tenant="t3"))
    await insert(store, job_key("a", tenant="t2"), create_time_ms=5)

    async def ids(**fields: object) -> list[str]:
        page, _ = await store.search(SearchQuery(JobFilter(**fields)))  # type: ignore[arg-type]
        return [f"{record.key.tenant_id}/{record.key.job_instance_id}" for record in page]

    assert await ids() == ["t2/a", "t3/d", "t2/c", "t2/b", "t1/a"]
    assert await ids(tenant_id="t2") == ["t2/a", "t2/c", "t2/b"]
    assert await ids(workspace_id="w1") == ["t2/a", "t3/d", "t2/b", "t1/a"]
    assert await ids(item_id="i2") == ["t2/c"]
    assert await ids(job_instance_id="a") == ["t2/a", "t1/a"]
    assert await ids(statuses=frozenset({IN_PROGRESS})) == ["t3/d"]
    assert await ids(created_since_ms=3) == ["t2/a", "t3/d", "t2/c"]
    assert await ids(item_type="Org.Workload.Item", job_type="Refresh", tenant_id="t1") == ["t1/a"]
    assert await ids(job_type="Other") == []


async def test_search_paging_visits_every_record_once_in_order(store: JobStore) -> None:
    for n in range(23):
        await insert(store, job_key("j", tenant=f"t{n % 5}", item_id=f"i{n}"), create_time_ms=100 + n // 4)
    everything, none = await store.search(SearchQuery(page_size=1000))

    seen: list[JobRecord] = []
    token: str | None = None
    pages = 0
    while True:
        page, token = await store.search(SearchQuery(page_size=4, page_token=token))
        seen += page
        pages += 1
        if token is None:
            break

    assert none is None
    assert (pages, len(everything)) == (6, 23)
    assert seen == everything
    times = [record.create_time_ms for record in everything]
    assert times == sorted(times, reverse=True)


async def test_search_and_tenant_listing_refuse_each_others_page_tokens(store: JobStore) -> None:
    for n in range(3):
        await insert(store, job_key(f"j{n}"), create_time_ms=n)
    _, list_token = await store.list(ListQuery(tenant_id="t1", page_size=1))
    _, search_token = await store.search(SearchQuery(page_size=1))
    assert list_token is not None
    assert search_token is not None

    with pytest.raises(ValueError, match="invalid page token"):
        await store.search(SearchQuery(page_token=list_token))
    with pytest.raises(ValueError, match="invalid page token"):
        await store.list(ListQuery(tenant_id="t1", page_token=search_token))


async def test_count_by_status_counts_what_the_filter_covers(store: JobStore) -> None:
    for name, tenant in [("a", "t1"), ("b", "t1"), ("c", "t2"), ("d", "t2"), ("e", "t2")]:
        await insert(store, job_key(name, tenant=tenant))
    await start(store, job_key("b"))
    await start(store, job_key("c", tenant="t2"))
    await store.cancel(job_key("d", tenant="t2"), at_ms=3_000)

    assert await store.count_by_status(JobFilter()) == {NOT_STARTED: 2, IN_PROGRESS: 2, CANCELLED: 1}
    assert await store.count_by_status(JobFilter(tenant_id="t2")) == {NOT_STARTED: 1, IN_PROGRESS: 1, CANCELLED: 1}
    assert await store.count_by_status(JobFilter(statuses=frozenset({CANCELLED}))) == {CANCELLED: 1}
    assert await store.count_by_status(JobFilter(job_type="Other")) == {}


async def test_every_change_of_a_job_is_a_transition_with_its_time(store: JobStore) -> None:
    await insert(store, job_key("run"), create_time_ms=1_000)
    await start(store, job_key("run"), at_ms=2_000)
    await store.cancel(job_key("run"), at_ms=2_500)
    await store.cancel(job_key("run"), at_ms=2_600)
    await store.transition(job_key("run"), {IN_PROGRESS}, CANCELLED, at_ms=3_000)
    await store.transition(job_key("run"), {IN_PROGRESS}, COMPLETED, at_ms=4_000)
    await insert(store, job_key("queued"), create_time_ms=1_000)
    await store.cancel(job_key("queued"), at_ms=1_500)
    await insert(store, job_key("lost"), create_time_ms=1_000)
    await start(store, job_key("lost"), at_ms=1_100)
    await store.fail_expired(lease_ms=100, at_ms=5_000, error=EXECUTOR_LOST)
    await insert(store, job_key("requeued"), create_time_ms=1_000)
    await start(store, job_key("requeued"), at_ms=1_100)
    await store.transition(job_key("requeued"), {IN_PROGRESS}, NOT_STARTED, at_ms=1_200)

    running = await store.transitions(job_key("run"))
    assert running[:2] == [Transition(NOT_STARTED, False, 1_000), Transition(IN_PROGRESS, False, 2_000)]
    asked = running[2]
    assert (asked.status, asked.cancel_requested) == (IN_PROGRESS, True)
    assert running[3:] == [Transition(CANCELLED, True, 3_000)]
    assert await store.transitions(job_key("queued")) == [
        Transition(NOT_STARTED, False, 1_000),
        Transition(CANCELLED, True, 1_500),
    ]
    assert [(t.status, t.at_ms) for t in await store.transitions(job_key("lost"))] == [
        (NOT_STARTED, 1_000),
        (IN_PROGRESS, 1_100),
        (FAILED, 5_000),
    ]
    assert [t.status for t in await store.transitions(job_key("requeued"))] == [NOT_STARTED, IN_PROGRESS, NOT_STARTED]
    assert await store.transitions(job_key("missing")) == []


async def test_changes_after_follow_every_job_in_order(store: JobStore) -> None:
    assert await store.last_change_seq() == 0
    await insert(store, job_key("a"))
    first = await store.last_change_seq()
    await insert(store, job_key("b", tenant="t2"))
    await start(store, job_key("a"))

    changes = await store.changes_after(first, limit=10)

    assert [(record.key.job_instance_id, record.status) for _, record in changes] == [
        ("b", NOT_STARTED),
        ("a", IN_PROGRESS),
    ]
    seqs = [seq for seq, _ in changes]
    assert seqs == sorted(seqs)
    assert seqs[0] > first
    assert await store.last_change_seq() == seqs[-1]
    assert await store.changes_after(seqs[-1], limit=10) == []
    assert len(await store.changes_after(0, limit=2)) == 2


async def test_the_history_migration_gives_existing_jobs_the_history_their_times_tell(
    dialect: str, empty_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = sqlite if dialect == "sqlite" else postgresql
    history = next(m.version for m in module.MIGRATIONS if m.name.endswith("_job_transitions.sql"))
    before = [migration for migration in module.MIGRATIONS if migration.version < history]
    with monkeypatch.context() as patched:
        patched.setattr(module, "MIGRATIONS", before)
        await open_store(empty_store_url).migrate()
    columns = "tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, status, invoke_type, "
    columns += "creation_payload, create_time_ms, start_time_ms, end_time_ms"
    for key, rest in (
        (job_key("done"), "'Completed', 'Manual', '{}', 1000, 2000, 3000"),
        (job_key("queued"), "'NotStarted', 'Manual', '{}', 1500, NULL, NULL"),
    ):
        values = ", ".join(f"'{part}'" for part in key.fields().values())
        await run_sql(empty_store_url, f"INSERT INTO job_instances ({columns}) VALUES ({values}, {rest})")

    store = open_store(empty_store_url)
    await store.migrate()
    await store.open()
    try:
        assert await store.transitions(job_key("done")) == [
            Transition(NOT_STARTED, False, 1_000),
            Transition(IN_PROGRESS, False, 2_000),
            Transition(COMPLETED, False, 3_000),
        ]
        assert await store.transitions(job_key("queued")) == [Transition(NOT_STARTED, False, 1_500)]
    finally:
        await store.close()


CALLER = Caller("t1", "5d7e9f1a-2b4c-4d6e-8f0a-1c3e5a7b9d2f", "megan@contoso.example", "app")


async def insert_acting(store: JobStore, key: JobKey, sealed: bytes = b"sealed-1") -> JobRecord:
    record, created = await store.insert(dataclasses.replace(new_job(key), caller=CALLER, credential=sealed))
    assert created
    return record


async def test_a_job_keeps_its_caller_and_its_credential_until_it_ends(store: JobStore) -> None:
    record = await insert_acting(store, job_key())

    assert record.caller == CALLER
    assert (await store.get(job_key()), await store.credential(job_key())) == (record, b"sealed-1")
    _, created = await store.insert(dataclasses.replace(new_job(job_key()), credential=b"another"))
    assert not created
    assert await store.credential(job_key()) == b"sealed-1"
    await store.replace_credential(job_key(), b"sealed-2")
    await start(store, job_key())
    assert await store.credential(job_key()) == b"sealed-2"

    assert await store.transition(job_key(), {IN_PROGRESS}, COMPLETED, at_ms=3_000) is not None

    assert await store.credential(job_key()) is None
    await store.replace_credential(job_key(), b"sealed-3")
    assert await store.credential(job_key()) is None
    assert (await store.get(job_key())).caller == CALLER  # type: ignore[union-attr]
    assert await store.credential(job_key("without")) is None


async def test_every_way_a_job_ends_deletes_its_credential_and_so_does_deleting_the_job(
    store: JobStore, store_url: str
) -> None:
    for name in ("cancelled", "lost", "failed", "deleted"):
        await insert_acting(store, job_key(name))
    await store.cancel(job_key("cancelled"), at_ms=2_000)
    await start(store, job_key("lost"), at_ms=2_000)
    await store.fail_expired(lease_ms=10, at_ms=10_000, error=EXECUTOR_LOST)
    await store.transition(job_key("failed"), {NOT_STARTED}, FAILED, at_ms=2_000, error=HANDLER_FAILED)
    await run_sql(store_url, "DELETE FROM job_instances WHERE job_instance_id = 'deleted'")

    assert [await status_of(store, job_key(name)) for name in ("cancelled", "lost", "failed")] == [
        CANCELLED,
        FAILED,
        FAILED,
    ]
    assert await run_sql(store_url, "SELECT count(*) FROM job_credentials") == [(0,)]


TIMED_OUT = ErrorDetails("JobTimedOut", "ran past its timeout", is_permanent=False)
START_DEADLINE_EXCEEDED = ErrorDetails("JobStartDeadlineExceeded", "not started in time", is_permanent=False)


async def insert_with_deadlines(
    store: JobStore, key: JobKey, *, start_deadline_ms: int | None = None, timeout_ms: int | None = None
) -> JobRecord:
    job = dataclasses.replace(new_job(key), start_deadline_ms=start_deadline_ms, timeout_ms=timeout_ms)
    record, created = await store.insert(job)
    assert created
    return record


async def test_deadlines_are_stored_with_the_job_and_a_claim_sets_the_run_deadline(store: JobStore) -> None:
    created = await insert_with_deadlines(store, job_key(), start_deadline_ms=9_000, timeout_ms=500)
    assert (created.start_deadline_ms, created.timeout_ms, created.run_deadline_ms) == (9_000, 500, None)

    started = await start(store, job_key(), at_ms=2_000)
    assert (started.start_deadline_ms, started.timeout_ms, started.run_deadline_ms) == (9_000, 500, 2_500)
    assert await store.get(job_key()) == started
    without = await insert(store, job_key("none"))
    assert (without.start_deadline_ms, without.timeout_ms, without.run_deadline_ms) == (None, None, None)
    assert (await start(store, job_key("none"))).run_deadline_ms is None


async def test_a_claim_at_or_past_the_start_deadline_starts_nothing(store: JobStore) -> None:
    await insert_with_deadlines(store, job_key(), start_deadline_ms=5_000)

    assert await store.transition(job_key(), {NOT_STARTED}, IN_PROGRESS, at_ms=5_000, owner="a") is None
    assert await status_of(store, job_key()) is NOT_STARTED
    assert await store.expire_start_deadline(job_key(), 4_999, START_DEADLINE_EXCEEDED) is None
    expired = await store.expire_start_deadline(job_key(), 5_000, START_DEADLINE_EXCEEDED)
    assert expired is not None
    assert (expired.status, expired.end_time_ms, expired.error, expired.start_time_ms) == (
        FAILED,
        5_000,
        START_DEADLINE_EXCEEDED,
        None,
    )
    assert await store.expire_start_deadline(job_key(), 6_000, START_DEADLINE_EXCEEDED) is None


async def test_expire_start_deadlines_ends_only_queued_jobs_past_theirs_in_batches(store: JobStore) -> None:
    for name, deadline in [("late-1", 3_000), ("late-2", 4_000), ("late-3", 4_500), ("on-time", 9_000)]:
        await insert_with_deadlines(store, job_key(name), start_deadline_ms=deadline)
    await insert(store, job_key("no-deadline"))
    await insert_with_deadlines(store, job_key("running"), start_deadline_ms=3_000)
    await start(store, job_key("running"), at_ms=2_000)
    await insert_with_deadlines(store, job_key("cancelled"), start_deadline_ms=3_000)
    await store.cancel(job_key("cancelled"), at_ms=2_500)

    first = await store.expire_start_deadlines(5_000, START_DEADLINE_EXCEEDED, limit=2)
    rest = await store.expire_start_deadlines(5_000, START_DEADLINE_EXCEEDED, limit=2)

    assert {record.key.job_instance_id for record in first} == {"late-1", "late-2"}  # the earliest deadlines first
    assert [record.key.job_instance_id for record in rest] == ["late-3"]
    for record in first + rest:
        assert (record.status, record.end_time_ms, record.error) == (FAILED, 5_000, START_DEADLINE_EXCEEDED)
        assert await store.get(record.key) == record
    for name, status in [("on-time", NOT_STARTED), ("no-deadline", NOT_STARTED), ("running", IN_PROGRESS)]:
        assert await status_of(store, job_key(name)) is status
    assert await status_of(store, job_key("cancelled")) is CANCELLED
    assert await store.expire_start_deadlines(5_000, START_DEADLINE_EXCEEDED, limit=2) == []


async def test_a_lost_job_past_its_run_deadline_ends_timed_out_else_executor_lost(store: JobStore) -> None:
    await insert_with_deadlines(store, job_key("past"), timeout_ms=1_000)
    await insert_with_deadlines(store, job_key("within"), timeout_ms=60_000)
    await insert(store, job_key("unbounded"))
    await insert(store, job_key("stale-past"))
    for name in ("past", "within", "unbounded"):
        await start(store, job_key(name), at_ms=2_000)

    lost = {
        name: await store.fail_lost(job_key(name), 5_000, EXECUTOR_LOST, TIMED_OUT)
        for name in ("past", "within", "unbounded")
    }

    assert {name: record.error if record else None for name, record in lost.items()} == {
        "past": TIMED_OUT,
        "within": EXECUTOR_LOST,
        "unbounded": EXECUTOR_LOST,
    }
    assert await store.fail_lost(job_key("past"), 6_000, EXECUTOR_LOST, TIMED_OUT) is None
    assert await store.fail_lost(job_key("stale-past"), 6_000, EXECUTOR_LOST, TIMED_OUT) is None
    await insert_with_deadlines(store, job_key("expired"), timeout_ms=1_000)
    await start(store, job_key("expired"), at_ms=2_000)
    [expired] = await store.fail_expired(lease_ms=1_000, at_ms=10_000, error=EXECUTOR_LOST, timeout_error=TIMED_OUT)
    assert (expired.key, expired.error) == (job_key("expired"), TIMED_OUT)


async def test_time_out_overdue_ends_running_jobs_whose_run_deadline_passed_before_the_margin(store: JobStore) -> None:
    for name, started_ms in [("overdue", 1_000), ("recent", 4_000)]:
        await insert_with_deadlines(store, job_key(name), timeout_ms=1_000)
        await start(store, job_key(name), at_ms=started_ms)
    await insert(store, job_key("unbounded"))
    await start(store, job_key("unbounded"), at_ms=1_000)

    [overdue] = await store.time_out_overdue(before_ms=4_000, at_ms=7_000, error=TIMED_OUT, limit=10)

    assert (overdue.key, overdue.status, overdue.end_time_ms, overdue.error) == (
        job_key("overdue"),
        FAILED,
        7_000,
        TIMED_OUT,
    )
    assert await status_of(store, job_key("recent")) is IN_PROGRESS
    assert await status_of(store, job_key("unbounded")) is IN_PROGRESS
