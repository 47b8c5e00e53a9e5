"""How a stored job instance reaches a handler, and how a cancel reaches the handler that runs it.

Two implementations: LocalDispatch (local_dispatch.py), the embedded default, runs handlers in this
process; ProcrastinateDispatch (procrastinate_dispatch.py), when job instances live in PostgreSQL,
queues them for workers in any process.
"""

from __future__ import annotations

from typing import Protocol

from fabric_jobs.server.model import JobKey


class Dispatch(Protocol):
    async def start(self) -> None:
        """Take up what a previous run left (queued jobs, jobs of dead executors), then keep doing so."""

    async def stop(self) -> None:
        """Stop; handlers running in this process get the shutdown grace, then are recorded Failed (retriable)."""

    async def submit(self, key: JobKey) -> None:
        """Have the NotStarted job run once, here or elsewhere."""

    async def cancel(self, key: JobKey) -> None:
        """Tell the handler of the running job, wherever it runs, to stop."""
