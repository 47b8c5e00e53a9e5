"""What operators need beyond the JobService: jobs of every tenant, counts, a job's history, every change live."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from fabric_jobs.errors import FieldViolation, invalid_argument
from fabric_jobs.keys import KEY_FIELDS
from fabric_jobs.server.lifecycle.manager import CancelledMatching, JobManager, not_found
from fabric_jobs.server.lifecycle.retention import PurgeRequest, purge
from fabric_jobs.server.model import JobKey, JobRecord, JobStatus, Transition, now_ms
from fabric_jobs.server.store import JobStore
from fabric_jobs.server.store.base import JobFilter, SearchQuery
from fabric_jobs.server.store.changes import ChangeFeed

CHANGES_POLL_SECONDS = 1.0
"""How often a change watcher reads the history when nothing woke it: changes made by other processes that
announce nothing (a create on another PostgreSQL replica) arrive within this."""
CHANGES_BATCH = 500
REORDER_WINDOW = 256
"""How many sequence numbers below the newest one seen a watcher keeps reading: on PostgreSQL a change may commit
after a change with a higher number."""


class JobAdmin:
    def __init__(self, store: JobStore, feed: ChangeFeed, manager: JobManager) -> None:
        self._store = store
        self._feed = feed
        self._manager = manager
        self._closed = False

    async def search(self, query: SearchQuery) -> tuple[list[JobRecord], str | None]:
        try:
            return await self._store.search(query)
        except ValueError as exc:
            raise invalid_argument([FieldViolation("page_token", "not a token this service issued")]) from exc

    async def count(self, job_filter: JobFilter) -> dict[JobStatus, int]:
        return await self._store.count_by_status(job_filter)

    async def history(self, key: JobKey) -> tuple[JobRecord, list[Transition]]:
        record = await self._store.get(key)
        if record is None:
            raise not_found(key)
        return record, await self._store.transitions(key)

    async def watch_changes(
        self, job_filter: JobFilter, started: Callable[[], Awaitable[None]] | None = None
    ) -> AsyncIterator[JobRecord]:
        """Every job the filter covers, each time it changes after `started` is called, until close()."""
        with self._feed.subscribe_every_job() as changed:
            floor = max(0, await self._store.last_change_seq() - REORDER_WINDOW)
            seen = {seq for seq, _ in await self._store.changes_after(floor, REORDER_WINDOW)}
            if started is not None:
                await started()
            while not self._closed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), CHANGES_POLL_SECONDS)
                changed.clear()
                while not self._closed:
                    changes = await self._store.changes_after(floor, CHANGES_BATCH)
                    fresh = {seq: record for seq, record in changes if seq not in seen}
                    newest = {record.key: record for record in fresh.values()}
                    for record in newest.values():
                        if matches(job_filter, record):
                            yield record
                    seen.update(fresh)
                    if seen:
                        floor = max(floor, max(seen) - REORDER_WINDOW)
                        seen = {seq for seq in seen if seq > floor}
                    if len(changes) < CHANGES_BATCH:
                        break

    async def purge(self, request: PurgeRequest) -> int:
        """Delete (or with dry_run count) the ended jobs of the filter older than the request says."""
        before_ms = now_ms() - request.older_than_ms
        if request.dry_run:
            return await self._store.count_purgeable(request.filter, before_ms)
        return await purge(self._store, request.filter, before_ms)

    async def cancel_matching(self, job_filter: JobFilter) -> CancelledMatching:
        """Cancel every job of the filter not ended yet (an item's, a workspace's), each as a Cancel would."""
        return await self._manager.cancel_matching(job_filter)

    def close(self) -> None:
        """End every change watch (the service is stopping)."""
        self._closed = True
        self._feed.publish_all()


def matches(job_filter: JobFilter, record: JobRecord) -> bool:
    key = record.key
    return (
        all(getattr(job_filter, field) in (None, getattr(key, field)) for field in KEY_FIELDS)
        and (not job_filter.statuses or record.status in job_filter.statuses)
        and (job_filter.created_since_ms is None or record.create_time_ms >= job_filter.created_since_ms)
    )
