"""The job lifecycle behind the five JobService calls: validate, store, dispatch, cancel, wait, watch.

How a job reaches a handler is the dispatch's business (fabric_jobs.server.execution.dispatch): in this
process (LocalDispatch) or on procrastinate workers (ProcrastinateDispatch).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from fabric_jobs import payload
from fabric_jobs.errors import ErrorCode, FabricError, FieldViolation, error, invalid_argument
from fabric_jobs.identity import Caller
from fabric_jobs.observability import metrics, tracing
from fabric_jobs.registry import InvalidPayload, JobRegistry
from fabric_jobs.server.execution.dispatch import Dispatch
from fabric_jobs.server.model import CreationPayload, InvokeType, JobKey, JobRecord, NewJob, now_ms
from fabric_jobs.server.settings import ServiceSettings
from fabric_jobs.server.store import JobStore, ListQuery
from fabric_jobs.server.store.changes import ChangeFeed, Changes

logger = logging.getLogger(__name__)


def not_found(key: JobKey) -> FabricError:
    return error(
        ErrorCode.JOB_INSTANCE_NOT_FOUND,
        f"Job instance {key.job_instance_id} of job type {key.job_type!r} was not found for this "
        "tenant, workspace and item.",
        message_parameters=(key.job_instance_id,),
    )


class JobManager:
    def __init__(
        self, store: JobStore, registry: JobRegistry, settings: ServiceSettings, dispatch: Dispatch, feed: ChangeFeed
    ) -> None:
        self._store = store
        self._registry = registry
        self._settings = settings
        self._dispatch = dispatch
        self._feed = feed

    async def create(
        self,
        key: JobKey,
        invoke_type: InvokeType,
        creation_payload: CreationPayload,
        *,
        caller: Caller | None = None,
        assertion: str | None = None,
    ) -> tuple[JobRecord, bool]:
        job_type = self._registry.get(key.item_type, key.job_type)
        if job_type is None:
            raise error(
                ErrorCode.UNSUPPORTED_JOB_TYPE,
                f"Job type {key.job_type!r} is not supported for item type {key.item_type!r}.",
                message_parameters=(key.item_type, key.job_type),
            )
        field = creation_payload.field
        if len(creation_payload.text.encode()) > self._settings.max_payload_bytes:
            raise invalid_argument(
                [FieldViolation(field, f"larger than {self._settings.max_payload_bytes} bytes as compact JSON")]
            )
        if job_type.validate is not None:
            try:
                job_type.validate(creation_payload.fields)
            except InvalidPayload as exc:
                raise invalid_argument([FieldViolation(f"{field}.{exc.field}", str(exc))]) from exc
        trace_context = tracing.current_context_text() if tracing.enabled() else None
        credential = await self._first_exchange(key, job_type.user_scopes, assertion)
        record, created = await self._store.insert(
            NewJob(key, invoke_type, creation_payload.text, now_ms(), trace_context, caller, credential)
        )
        if not created:
            if record.invoke_type != invoke_type or not _same_payload(record.creation_payload, creation_payload):
                raise error(
                    ErrorCode.JOB_INSTANCE_CONFLICT,
                    f"Job instance {key.job_instance_id} already exists with another invokeType or creationPayload.",
                    message_parameters=(key.job_instance_id,),
                )
            return record, False
        logger.info("job %s created (%s)", key, invoke_type)
        self._feed.publish(record)
        metrics.jobs_created_of(key.job_type).inc()
        await self._dispatch.submit(key)
        return record, True

    async def _first_exchange(self, key: JobKey, scopes: tuple[str, ...], assertion: str | None) -> bytes | None:
        """For a new job that acts for its user: the sealed material of the on-behalf-of exchange of the assertion."""
        provider = self._settings.user_tokens
        if provider is None or not scopes or not assertion or await self._store.get(key) is not None:
            return None
        return await provider.first_exchange(key, assertion, scopes)

    async def get(self, key: JobKey) -> JobRecord:
        record = await self._store.get(key)
        if record is None:
            raise not_found(key)
        return record

    async def cancel(self, key: JobKey) -> JobRecord:
        # Subscribed before the cancel's statement, so that no change after it is missed; the wait starts from the
        # row that statement returned.
        with self._feed.subscribe(key) as changes:
            record = await self._store.cancel(key, now_ms())
            if record is None:
                raise not_found(key)
            self._feed.publish(record)
            logger.info("job %s: cancel asked; it is %s", key, record.status)
            if record.status.is_terminal:
                return record
            await self._dispatch.cancel(key)
            return await self._until_terminal(record, changes, self._settings.cancel_wait)

    async def list(self, query: ListQuery) -> tuple[list[JobRecord], str | None]:
        try:
            return await self._store.list(query)
        except ValueError as exc:
            raise invalid_argument([FieldViolation("page_token", "not a token this service issued")]) from exc

    async def watch(self, key: JobKey) -> AsyncIterator[JobRecord]:
        with self._feed.subscribe(key) as changes:
            record = await self.get(key)
            yield record
            while not record.status.is_terminal:
                changed = await changes.wait(self._feed.poll_seconds)
                told = changes.take(record) if changed else None
                # Nothing told within the poll: another process may have changed the job without telling us.
                last, record = record, told if told is not None else await self.get(key)
                if record.version != last.version:
                    yield record

    async def _until_terminal(self, record: JobRecord, changes: Changes, seconds: float) -> JobRecord:
        """The job once it is terminal, or as it is after `seconds`: records published in this process are taken as
        they are; the job is read only when another process changed it (or at a poll, or at the end)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not record.status.is_terminal:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return await self.get(record.key)
            changed = await changes.wait(min(remaining, self._feed.poll_seconds))
            told = changes.take(record) if changed else None
            if told is not None:
                record = told
            elif changed or loop.time() < deadline:
                record = await self.get(record.key)
        return record


def _same_payload(stored: str, requested: CreationPayload) -> bool:
    """Compared as JSON values: key order, spaces and 5 against 5.0 do not make another request."""
    return stored == requested.text or payload.canonical(payload.loads(stored)) == payload.canonical(requested.fields)
