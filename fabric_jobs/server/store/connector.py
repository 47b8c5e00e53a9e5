"""What a database gives the store: the thin part that differs between SQLite and PostgreSQL.

A connector connects, migrates, runs a named query of its dialect's `.sql` file, encodes a set of
statuses the way its queries take one, turns its driver's errors into StoreError and announces changes
to other processes. Every query is chosen, and every row read, by the one JobStore.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from fabric_jobs.server.model import JobStatus
from fabric_jobs.server.store.rows import Row


class Connector(Protocol):
    async def open(self) -> None:
        """Connect (the embedded SQLite database also applies pending migrations). Raises StoreError."""

    async def close(self) -> None: ...

    async def migrate(self) -> None:
        """Apply pending numbered migrations; harmless when run twice or concurrently. Raises StoreError."""

    async def run(self, query: str, params: Mapping[str, object], *, announce: bool = False) -> Sequence[Row]:
        """Run the named query as a transaction of its own and return its rows. With `announce`, tell the other
        processes on the database that the jobs of those rows changed (where they learn it another way, nothing).
        Raises StoreError when the store is not open or the database fails."""

    def status_set(self, statuses: Collection[JobStatus]) -> object:
        """The value of a query parameter that holds a set of statuses."""
