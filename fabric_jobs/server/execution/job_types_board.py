"""On PostgreSQL, processes compare their registries: each one that runs handlers writes its job types in
`worker_job_types`, and every process reads the others' and logs a WARNING naming the job types it accepts that a
worker has no handler for (their jobs would end Failed, UnsupportedJobType) and those a worker serves that it does
not know (their Creates are refused here, 400 UnsupportedJobType). Each difference is said once."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import procrastinate
from procrastinate import exceptions as procrastinate_errors

from fabric_jobs.registry import JobRegistry
from fabric_jobs.server.model import now_ms
from fabric_jobs.server.store.queries import load_named_queries

logger = logging.getLogger(__name__)

QUERIES = load_named_queries("procrastinate.sql")
STALE_AFTER_LEASES = 3
"""A row not renewed for this many --lease-seconds belongs to a process that stopped."""


def job_type_names(registry: JobRegistry) -> frozenset[str]:
    return frozenset(f"{job.item_type}/{job.job_type}" for job in registry.job_types())


class JobTypesBoard:
    def __init__(
        self, app: procrastinate.App, registry: JobRegistry, name: str, *, publishes: bool, lease_seconds: float
    ) -> None:
        self._app = app
        self._job_types = job_type_names(registry)
        self._name = name
        self._publishes = publishes
        self._lease_ms = int(lease_seconds * 1000)
        self._interval = max(lease_seconds, 0.2)
        self._said: set[tuple[str, frozenset[str], frozenset[str]]] = set()
        self._agreed = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._round()
        self._task = asyncio.create_task(self._loop(), name="job types board")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._publishes:
            try:
                await self._execute("withdraw_job_types", worker=self._name)
            except procrastinate_errors.ConnectorException as exc:
                logger.debug("could not withdraw this process's job types: %s", exc)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._round()
            except procrastinate_errors.ConnectorException as exc:
                logger.warning("could not compare job types with the other processes: %s", exc)

    async def _round(self) -> None:
        now = now_ms()
        stale_before = now - STALE_AFTER_LEASES * self._lease_ms
        if self._publishes:
            job_types = sorted(self._job_types)
            await self._execute(
                "publish_job_types", worker=self._name, job_types=job_types, now_ms=now, stale_before_ms=stale_before
            )
        rows = await self._query("workers_job_types", worker=self._name, stale_before_ms=stale_before)
        for row in rows:
            self._compare(row["worker"], frozenset(row["job_types"]))
        if rows and not self._agreed and all(frozenset(row["job_types"]) == self._job_types for row in rows):
            self._agreed = True
            logger.info("job types agree with the %d other process(es) that run handlers", len(rows))

    def _compare(self, worker: str, theirs: frozenset[str]) -> None:
        unknown_here, no_handler_there = theirs - self._job_types, self._job_types - theirs
        if not unknown_here and not no_handler_there:
            return
        said = (worker, unknown_here, no_handler_there)
        if said in self._said:
            return
        self._said.add(said)
        parts = []
        if unknown_here:
            parts.append(
                f"worker {worker} serves job types this process does not know (their Creates are refused here as "
                f"UnsupportedJobType): {', '.join(sorted(unknown_here))}"
            )
        if no_handler_there:
            parts.append(
                f"this process accepts job types worker {worker} has no handler for (their jobs fail there as "
                f"UnsupportedJobType): {', '.join(sorted(no_handler_there))}"
            )
        logger.warning("%s; give every grpc, worker and serve process the same --jobs", "; ".join(parts))

    async def _execute(self, name: str, **arguments: Any) -> None:
        await self._app.connector.execute_query_async(QUERIES[name], **arguments)

    async def _query(self, name: str, **arguments: Any) -> list[dict[str, Any]]:
        return await self._app.connector.execute_query_all_async(QUERIES[name], **arguments)
