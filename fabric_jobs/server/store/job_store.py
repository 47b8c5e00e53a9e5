"""The store: every database call of the JobService, by name, over a connector to SQLite or PostgreSQL.

Every state change is one atomic compare-and-set (`UPDATE ... WHERE <key> AND status IN (...) RETURNING *`);
the first terminal write wins.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection
from dataclasses import dataclass

from fabric_jobs.errors import ErrorDetails
from fabric_jobs.server.model import JobKey, JobRecord, JobStatus, NewJob, Progress, QueuedJob, Transition
from fabric_jobs.server.store.base import JobFilter, ListQuery, SearchQuery, StoreError
from fabric_jobs.server.store.connector import Connector
from fabric_jobs.server.store.error_column import error_to_column
from fabric_jobs.server.store.page_token import encode_page_token
from fabric_jobs.server.store.rows import (
    filter_params,
    key_from_row,
    key_params,
    list_params,
    new_job_params,
    page_key,
    progress_params,
    queued_from_row,
    record_from_row,
    search_page_key,
    search_params,
    transition_from_row,
    transition_params,
    transition_query,
)

PURGE_LOCK_KEY = 0x4A0B5_0002
"""On PostgreSQL, the advisory lock a purge batch tries (pg_try_advisory_xact_lock): one pruner at a time."""


@dataclass(frozen=True, slots=True)
class PurgeBatch:
    held: bool
    """False when another process was pruning (PostgreSQL): nothing was deleted, try again later."""
    purged: int


class JobStore:
    """Where job instances live. `connector` is the database: SqliteConnector or PostgresConnector."""

    def __init__(self, connector: Connector) -> None:
        self.connector = connector

    async def migrate(self) -> None:
        """Apply pending numbered migrations; harmless when run twice or concurrently. Raises StoreError."""
        await self.connector.migrate()

    async def open(self) -> None:
        """Connect (the embedded SQLite store also applies pending migrations). Raises StoreError."""
        await self.connector.open()

    async def close(self) -> None:
        await self.connector.close()

    async def insert(self, job: NewJob) -> tuple[JobRecord, bool]:
        """Store a NotStarted instance, then its sealed credential when it has one. Returns (record, True), or
        (existing record, False) if the key exists (its credential unchanged).

        Two statements: a process that dies between them leaves a job without a credential, whose handler's first
        token request then fails it (TokenUnavailable no_user_token); it is not dispatched before both are done."""
        rows = await self.connector.run("insert_job", new_job_params(job))
        if rows:
            if job.credential is not None:
                await self.connector.run("insert_credential", {**key_params(job.key), "sealed": job.credential})
            return record_from_row(rows[0], job.key), True
        existing = await self.get(job.key)
        if existing is None:
            raise StoreError(f"job {job.key} neither inserted nor found")
        return existing, False

    async def get(self, key: JobKey) -> JobRecord | None:
        rows = await self.connector.run("get_job", key_params(key))
        return record_from_row(rows[0], key) if rows else None

    async def credential(self, key: JobKey) -> bytes | None:
        """The job's sealed credential (stored by insert), None when it has none: it never had one, or it ended."""
        rows = await self.connector.run("get_credential", key_params(key))
        return bytes(rows[0]["sealed"]) if rows else None

    async def replace_credential(self, key: JobKey, sealed: bytes) -> None:
        """Store a job's new sealed credential, if it still has one (a job that ended has none)."""
        await self.connector.run("replace_credential", {**key_params(key), "sealed": sealed})

    async def transition(
        self,
        key: JobKey,
        expected: Collection[JobStatus],
        new: JobStatus,
        *,
        at_ms: int,
        owner: str | None = None,
        error: ErrorDetails | None = None,
        max_running: int | None = None,
    ) -> JobRecord | None:
        """Atomically move the instance from one of `expected` to `new`, or do nothing.

        Moving to InProgress sets start_time (and owner and heartbeat); moving to a terminal status
        sets end_time (and error, when given) and deletes the job's credential in the same transaction (a
        trigger of migration 0020 does, for every statement that ends a job). Returns the updated record, or
        None when the instance is missing or its status was not in `expected`.

        With `max_running` (a claim: NotStarted to InProgress), the job starts only while its tenant has fewer
        than `max_running` jobs InProgress, across every process on the database, and no older NotStarted job
        that would take the place first; otherwise None, and the job stays NotStarted.
        """
        params = {
            **transition_params(key, new, at_ms, owner, error),
            "expected_statuses": self.connector.status_set(expected),
        }
        query = transition_query(new)
        if max_running is not None and new is JobStatus.IN_PROGRESS:
            if set(expected) != {JobStatus.NOT_STARTED}:
                raise ValueError("a claim under a cap starts a NotStarted job only")
            query, params["max_running"] = "claim_within_cap", max_running
        rows = await self.connector.run(query, params, announce=True)
        return record_from_row(rows[0], key) if rows else None

    async def queued_in_turn(self, limit: int) -> builtins.list[QueuedJob]:
        """The NotStarted instances in the order they should start (turn, then oldest first)."""
        return [queued_from_row(row) for row in await self.connector.run("queued_in_turn", {"limit": limit})]

    async def startable_within_cap(
        self, max_running: int, limit: int, tenant_id: str | None = None
    ) -> builtins.list[QueuedJob]:
        """The NotStarted instances the per-tenant cap lets start now (of `tenant_id`, or of every tenant): each
        tenant's oldest, as many as it has places free, in the order they should start."""
        params = {"max_running": max_running, "limit": limit, "tenant_id": tenant_id}
        query = "startable_within_cap" if tenant_id is None else "startable_of_tenant"
        return [queued_from_row(row) for row in await self.connector.run(query, params)]

    async def report_progress(self, key: JobKey, owner: str, progress: Progress) -> JobRecord | None:
        """Store the handler's progress report while the job is InProgress on executor `owner`: one statement that
        replaces the job's progress and bumps its version (a watch sees the change), never touching its status.
        Returns the updated record, or None when the job is not (or no longer) running there: the report is
        dropped and a transition that got there first stands."""
        rows = await self.connector.run("report_progress", progress_params(key, owner, progress), announce=True)
        return record_from_row(rows[0], key) if rows else None

    async def cancel(self, key: JobKey, at_ms: int) -> JobRecord | None:
        """In one statement, end a NotStarted instance Cancelled (at at_ms) or mark an InProgress one cancel requested.

        Returns the record as it is now (unchanged when terminal or already cancel requested), None if missing.
        """
        record, _ = await self.ask_cancel(key, at_ms)
        return record

    async def ask_cancel(self, key: JobKey, at_ms: int) -> tuple[JobRecord | None, bool]:
        """`cancel`, and whether its statement changed the job (False: it had ended, or its cancel was asked before)."""
        rows = await self.connector.run("cancel", {**key_params(key), "at_ms": at_ms}, announce=True)
        return (record_from_row(rows[0], key), True) if rows else (await self.get(key), False)

    async def list(self, query: ListQuery) -> tuple[builtins.list[JobRecord], str | None]:
        """Newest first; returns the page and the token of the next one (None on the last page).

        Raises ValueError for a page token it did not issue.
        """
        rows = await self.connector.run("list_jobs", {**list_params(query), "statuses": self._any_of(query.statuses)})
        page = rows[: query.page_size]
        next_token = encode_page_token(page_key(page[-1])) if len(rows) > query.page_size else None
        return [record_from_row(row) for row in page], next_token

    async def search(self, query: SearchQuery) -> tuple[builtins.list[JobRecord], str | None]:
        """Across tenants, newest first; the page and the next one's token (None on the last page).

        Raises ValueError for a page token it did not issue (a tenant listing's token included).
        """
        params = {**search_params(query), "statuses": self._any_of(query.filter.statuses)}
        rows = await self.connector.run("search_jobs", params)
        page = rows[: query.page_size]
        next_token = encode_page_token(search_page_key(page[-1])) if len(rows) > query.page_size else None
        return [record_from_row(row) for row in page], next_token

    async def count_by_status(self, job_filter: JobFilter) -> dict[JobStatus, int]:
        """How many jobs the filter covers in each status (statuses without jobs are left out)."""
        rows = await self.connector.run("count_jobs_by_status", self._filter_params(job_filter))
        return {JobStatus(row["status"]): row["count"] for row in rows}

    async def transitions(self, key: JobKey) -> builtins.list[Transition]:
        """The job's history, oldest first: its creation, each change of status, a cancel asked while running."""
        return [transition_from_row(row) for row in await self.connector.run("transitions_of_job", key_params(key))]

    async def changes_after(self, seq: int, limit: int) -> builtins.list[tuple[int, JobRecord]]:
        """The changes of any job recorded after change `seq`, oldest first, each with the job as it is now."""
        rows = await self.connector.run("changes_after", {"after_seq": seq, "limit": limit})
        return [(row["change_seq"], record_from_row(row)) for row in rows]

    async def last_change_seq(self) -> int:
        """The sequence number of the newest change (0 when none): where a change feed starts."""
        rows = await self.connector.run("last_change_seq", {})
        seq: int = rows[0]["seq"]
        return seq

    async def heartbeat(self, owner: str, at_ms: int) -> builtins.list[JobKey]:
        """Renew the lease of executor `owner` (one write, however many jobs it runs).

        Returns its InProgress instances whose cancel was requested (through any process).
        """
        await self.connector.run("renew_executor_lease", {"owner": owner, "at_ms": at_ms})
        return [key_from_row(row) for row in await self.connector.run("cancel_requested_of_owner", {"owner": owner})]

    async def fail_expired(
        self, lease_ms: int, at_ms: int, error: ErrorDetails, timeout_error: ErrorDetails | None = None
    ) -> builtins.list[JobRecord]:
        """End Failed every InProgress instance claimed over lease_ms ago whose executor has not renewed its
        lease within lease_ms, with `error`, or `timeout_error` (if given) for one past its run deadline; returns
        them."""
        lease = {"lease_ms": lease_ms, "at_ms": at_ms}
        errors = {"error": error_to_column(error), "timeout_error": error_to_column(timeout_error or error)}
        rows = await self.connector.run("fail_expired", {**lease, **errors}, announce=True)
        await self.connector.run("forget_expired_executor_leases", lease)
        return [record_from_row(row) for row in rows]

    async def fail_lost(
        self, key: JobKey, at_ms: int, error: ErrorDetails, timeout_error: ErrorDetails
    ) -> JobRecord | None:
        """End Failed the InProgress instance whose executor was found dead, with `error`, or `timeout_error` when it
        is past its run deadline; None when it is not InProgress."""
        params = {
            **key_params(key),
            "at_ms": at_ms,
            "error": error_to_column(error),
            "timeout_error": error_to_column(timeout_error),
        }
        rows = await self.connector.run("fail_lost_job", params, announce=True)
        return record_from_row(rows[0], key) if rows else None

    async def expire_start_deadlines(self, at_ms: int, error: ErrorDetails, limit: int) -> builtins.list[JobRecord]:
        """End Failed (with `error`) at most `limit` NotStarted instances whose start deadline is at or before at_ms,
        earliest deadline first; on PostgreSQL their queued procrastinate jobs are deleted in the same statement."""
        params = {"at_ms": at_ms, "error": error_to_column(error), "limit": limit}
        rows = await self.connector.run("expire_start_deadlines", params, announce=True)
        return [record_from_row(row) for row in rows]

    async def expire_start_deadline(self, key: JobKey, at_ms: int, error: ErrorDetails) -> JobRecord | None:
        """End Failed (with `error`) the instance if it is NotStarted and its start deadline is at or before at_ms."""
        params = {**key_params(key), "at_ms": at_ms, "error": error_to_column(error)}
        rows = await self.connector.run("expire_start_deadline_of_job", params, announce=True)
        return record_from_row(rows[0], key) if rows else None

    async def time_out_overdue(
        self, before_ms: int, at_ms: int, error: ErrorDetails, limit: int
    ) -> builtins.list[JobRecord]:
        """End Failed (with `error`, at at_ms) at most `limit` InProgress instances whose run deadline passed before
        before_ms."""
        params = {"before_ms": before_ms, "at_ms": at_ms, "error": error_to_column(error), "limit": limit}
        rows = await self.connector.run("time_out_overdue", params, announce=True)
        return [record_from_row(row) for row in rows]

    async def purge_batch(self, job_filter: JobFilter, before_ms: int, limit: int) -> PurgeBatch:
        """Delete at most `limit` terminal jobs the filter covers that ended before `before_ms`, oldest end first,
        with everything that belongs to them (history, stored credentials, on PostgreSQL their procrastinate jobs
        and those jobs' events), in one short transaction.

        Only one process prunes at a time: on PostgreSQL a batch that finds another process's batch under way
        deletes nothing and answers held=False; SQLite has one writer. Jobs not ended stay, however old.
        """
        params = {**self._filter_params(job_filter), "before_ms": before_ms, "limit": limit, "lock_key": PURGE_LOCK_KEY}
        rows = await self.connector.run("purge_jobs", params)
        return PurgeBatch(held=all(row["held"] for row in rows), purged=sum(row["purged"] for row in rows))

    async def count_purgeable(self, job_filter: JobFilter, before_ms: int) -> int:
        """How many jobs purge_batch would delete, in batches, with the same filter and time (a dry run)."""
        rows = await self.connector.run("count_purgeable", {**self._filter_params(job_filter), "before_ms": before_ms})
        count: int = rows[0]["count"]
        return count

    def _filter_params(self, job_filter: JobFilter) -> dict[str, object]:
        return {**filter_params(job_filter), "statuses": self._any_of(job_filter.statuses)}

    def _any_of(self, statuses: Collection[JobStatus]) -> object:
        """The statuses parameter of a filter: None for any status."""
        return self.connector.status_set(statuses) if statuses else None
