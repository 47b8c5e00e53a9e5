"""The job lifecycle behind the five JobService calls, and the upkeep that keeps nothing lost.

Upkeep runs every lease/3 seconds: it renews the lease of this process's running jobs (and picks
up cancels asked for through another process), ends Failed (retriable) the running jobs of
executors whose lease expired, and queues NotStarted jobs that no live process has queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fabric_jobs.errors import (
    ErrorCode,
    ErrorDetails,
    FabricError,
    FieldViolation,
    error,
    invalid_argument,
    job_executor_lost,
)
from fabric_jobs.server.changes import POLL_SECONDS, ChangeFeed
from fabric_jobs.server.executor import LocalExecutor
from fabric_jobs.server.model import InvokeType, JobKey, JobRecord, JobStatus, NewJob, now_ms
from fabric_jobs.server.registry import InvalidPayload, JobRegistry, canonical_json
from fabric_jobs.server.settings import ServiceSettings
from fabric_jobs.server.store import JobStore, ListQuery, StoreError

logger = logging.getLogger(__name__)

RECOVERY_BATCH = 1000


def not_found(key: JobKey) -> FabricError:
    return error(
        ErrorCode.JOB_INSTANCE_NOT_FOUND,
        f"Job instance {key.job_instance_id} of job type {key.job_type!r} was not found for this "
        "tenant, workspace and item.",
        message_parameters=(key.job_instance_id,),
    )


def executor_lost_error() -> ErrorDetails:
    return job_executor_lost("The process running the job stopped before the job finished; it can be retried.")


class JobManager:
    def __init__(
        self, store: JobStore, registry: JobRegistry, settings: ServiceSettings, *, owner: str | None = None
    ) -> None:
        self._store = store
        self._registry = registry
        self._settings = settings
        self.feed = ChangeFeed()
        self.owner = owner or f"executor-{uuid.uuid4()}"
        self.executor = LocalExecutor(store, registry, self.feed, settings, self.owner)
        self._upkeep: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._store.heartbeat(self.owner, now_ms())
        await self._recover()
        self._upkeep = asyncio.create_task(self._upkeep_loop(), name="job upkeep")

    async def stop(self) -> None:
        if self._upkeep is not None:
            self._upkeep.cancel()
            await asyncio.gather(self._upkeep, return_exceptions=True)
        await self.executor.shutdown()

    async def create(self, key: JobKey, invoke_type: InvokeType, payload: Mapping[str, Any]) -> tuple[JobRecord, bool]:
        job_type = self._registry.get(key.item_type, key.job_type)
        if job_type is None:
            raise error(
                ErrorCode.UNSUPPORTED_JOB_TYPE,
                f"Job type {key.job_type!r} is not supported for item type {key.item_type!r}.",
                message_parameters=(key.item_type, key.job_type),
            )
        canonical = canonical_json(payload)
        if len(canonical.encode()) > self._settings.max_payload_bytes:
            raise invalid_argument(
                [FieldViolation("creation_payload", f"larger than {self._settings.max_payload_bytes} bytes as JSON")]
            )
        if job_type.validate is not None:
            try:
                job_type.validate(payload)
            except InvalidPayload as exc:
                raise invalid_argument([FieldViolation(f"creation_payload.{exc.field}", str(exc))]) from exc
        record, created = await self._store.insert(NewJob(key, invoke_type, canonical, now_ms()))
        if not created:
            if record.invoke_type != invoke_type or record.creation_payload != canonical:
                raise error(
                    ErrorCode.JOB_INSTANCE_CONFLICT,
                    f"Job instance {key.job_instance_id} already exists with another invokeType or creationPayload.",
                    message_parameters=(key.job_instance_id,),
                )
            return record, False
        logger.info("job %s created (%s)", key, invoke_type)
        self.executor.schedule(key)
        return record, True

    async def get(self, key: JobKey) -> JobRecord:
        record = await self._store.get(key)
        if record is None:
            raise not_found(key)
        return record

    async def cancel(self, key: JobKey) -> JobRecord:
        record = await self._store.cancel(key, now_ms())
        if record is None:
            raise not_found(key)
        self.feed.publish(key)
        logger.info("job %s: cancel asked; it is %s", key, record.status)
        if record.status.is_terminal:
            return record
        self.executor.cancel(key)
        return await self._wait_until_terminal(key, self._settings.cancel_wait)

    async def list(self, query: ListQuery) -> tuple[list[JobRecord], str | None]:
        try:
            return await self._store.list(query)
        except ValueError as exc:
            raise invalid_argument([FieldViolation("page_token", "not a token this service issued")]) from exc

    async def watch(self, key: JobKey) -> AsyncIterator[JobRecord]:
        with self.feed.subscribe(key) as changed:
            record = await self.get(key)
            yield record
            last = _visible(record)
            while not record.status.is_terminal:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), POLL_SECONDS)
                changed.clear()
                record = await self.get(key)
                if _visible(record) != last:
                    last = _visible(record)
                    yield record

    async def _wait_until_terminal(self, key: JobKey, seconds: float) -> JobRecord:
        """The record once it is terminal, or as it is after `seconds`."""
        deadline = asyncio.get_running_loop().time() + seconds
        with self.feed.subscribe(key) as changed:
            while True:
                record = await self.get(key)
                remaining = deadline - asyncio.get_running_loop().time()
                if record.status.is_terminal or remaining <= 0:
                    return record
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), min(remaining, POLL_SECONDS / 10))
                changed.clear()

    async def _recover(self) -> None:
        lease_ms = int(self._settings.lease_seconds * 1000)
        for record in await self._store.fail_expired(lease_ms, now_ms(), executor_lost_error()):
            logger.warning("job %s was left running by a stopped process: ended Failed (retriable)", record.key)
            self.feed.publish(record.key)
        queued = await self._store.keys_with_status(JobStatus.NOT_STARTED, RECOVERY_BATCH)
        scheduled = sum(self.executor.schedule(key) for key in queued)
        if scheduled:
            logger.info("queued %d job(s) left NotStarted", scheduled)

    async def _upkeep_loop(self) -> None:
        interval = max(self._settings.lease_seconds / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                for key in await self._store.heartbeat(self.owner, now_ms()):
                    self.executor.cancel(key)
                await self._recover()
            except StoreError:
                logger.exception("job upkeep failed; retrying in %.1fs", interval)


def _visible(record: JobRecord) -> tuple[object, ...]:
    return (record.status, record.start_time_ms, record.end_time_ms, record.error, record.cancel_requested)
