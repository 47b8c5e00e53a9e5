"""The store interface. Every state change is one atomic compare-and-set; the first terminal write wins."""

from __future__ import annotations

import builtins
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from fabric_jobs.errors import ErrorDetails
from fabric_jobs.server.model import JobKey, JobRecord, JobStatus, NewJob, Transition


class StoreError(Exception):
    """The database failed or is misconfigured. The driver's error is kept as __cause__."""


@dataclass(frozen=True, slots=True)
class ListQuery:
    tenant_id: str
    workspace_id: str | None = None
    item_type: str | None = None
    item_id: str | None = None
    job_type: str | None = None
    statuses: frozenset[JobStatus] = frozenset()
    page_size: int = 100
    page_token: str | None = None


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs an admin listing or count covers, across tenants; None (or no statuses) means any."""

    tenant_id: str | None = None
    workspace_id: str | None = None
    item_type: str | None = None
    item_id: str | None = None
    job_type: str | None = None
    job_instance_id: str | None = None
    statuses: frozenset[JobStatus] = frozenset()
    created_since_ms: int | None = None


@dataclass(frozen=True, slots=True)
class SearchQuery:
    filter: JobFilter = JobFilter()
    page_size: int = 100
    page_token: str | None = None


class JobStore(Protocol):
    async def migrate(self) -> None:
        """Apply pending numbered migrations; harmless when run twice or concurrently. Raises StoreError."""

    async def open(self) -> None:
        """Connect (the embedded SQLite store also applies pending migrations). Raises StoreError."""

    async def close(self) -> None: ...

    async def insert(self, job: NewJob) -> tuple[JobRecord, bool]:
        """Store a NotStarted instance, and its sealed credential in the same transaction. Returns (record, True), or
        (existing record, False) if the key exists (its credential unchanged)."""

    async def get(self, key: JobKey) -> JobRecord | None: ...

    async def credential(self, key: JobKey) -> bytes | None:
        """The job's sealed credential (stored by insert), None when it has none: it never had one, or it ended."""

    async def replace_credential(self, key: JobKey, sealed: bytes) -> None:
        """Store a job's new sealed credential, if it still has one (a job that ended has none)."""

    async def transition(
        self,
        key: JobKey,
        expected: Collection[JobStatus],
        new: JobStatus,
        *,
        at_ms: int,
        owner: str | None = None,
        error: ErrorDetails | None = None,
    ) -> JobRecord | None:
        """Atomically move the instance from one of `expected` to `new`, or do nothing.

        Moving to InProgress sets start_time (and owner and heartbeat); moving to a terminal status
        sets end_time (and error, when given) and deletes the job's credential in the same transaction.
        Returns the updated record, or None when the instance is missing or its status was not in `expected`.
        """

    async def cancel(self, key: JobKey, at_ms: int) -> JobRecord | None:
        """In one statement, end a NotStarted instance Cancelled (at at_ms) or mark an InProgress one cancel requested.

        Returns the record as it is now (unchanged when terminal or already cancel requested), None if missing.
        """

    async def list(self, query: ListQuery) -> tuple[builtins.list[JobRecord], str | None]:
        """Newest first; returns the page and the token of the next one (None on the last page).

        Raises ValueError for a page token it did not issue.
        """

    async def search(self, query: SearchQuery) -> tuple[builtins.list[JobRecord], str | None]:
        """Across tenants, newest first; the page and the next one's token (None on the last page).

        Raises ValueError for a page token it did not issue (a tenant listing's token included).
        """

    async def count_by_status(self, job_filter: JobFilter) -> dict[JobStatus, int]:
        """How many jobs the filter covers in each status (statuses without jobs are left out)."""

    async def transitions(self, key: JobKey) -> builtins.list[Transition]:
        """The job's history, oldest first: its creation, each change of status, a cancel asked while running."""

    async def changes_after(self, seq: int, limit: int) -> builtins.list[tuple[int, JobRecord]]:
        """The changes of any job recorded after change `seq`, oldest first, each with the job as it is now."""

    async def last_change_seq(self) -> int:
        """The sequence number of the newest change (0 when none): where a change feed starts."""

    async def keys_with_status(self, status: JobStatus, limit: int) -> builtins.list[JobKey]:
        """Oldest first: the instances to (re)start after a restart."""

    async def heartbeat(self, owner: str, at_ms: int) -> builtins.list[JobKey]:
        """Renew the lease of executor `owner` (one write, however many jobs it runs).

        Returns its InProgress instances whose cancel was requested (through any process).
        """

    async def fail_expired(self, lease_ms: int, at_ms: int, error: ErrorDetails) -> builtins.list[JobRecord]:
        """End Failed every InProgress instance claimed over lease_ms ago whose executor has not renewed its
        lease within lease_ms; returns them."""


def open_store(url: str) -> JobStore:
    """The store for a database URL: sqlite:///path/to/file.db (or sqlite:///:memory:), or
    postgresql://user@host:port/dbname (also postgres://). Raises StoreError for a URL it cannot use."""
    if url.startswith("sqlite:///"):
        from fabric_jobs.server.store.sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        from fabric_jobs.server.store.postgresql import PostgresStore

        return PostgresStore(url)
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise StoreError(
        f"unsupported database URL scheme {scheme!r}: use sqlite:///path/to/file.db or postgresql://host:port/dbname"
    )
