"""The job lifecycle behind the five JobService calls (and the AdminService's cancel of every job of an item):
validate, store, dispatch, cancel, wait, watch.

How a job reaches a handler is the dispatch's business (fabric_jobs.server.execution.dispatch): in this
process (LocalDispatch) or on procrastinate workers (ProcrastinateDispatch).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from fabric_jobs import payload
from fabric_jobs.errors import ErrorCode, FabricError, FieldViolation, error, invalid_argument
from fabric_jobs.identity import Caller
from fabric_jobs.observability import metrics, tracing
from fabric_jobs.registry import InvalidPayload, JobRegistry
from fabric_jobs.server.execution.deadlines import deadlines_at_create
from fabric_jobs.server.execution.dispatch import Dispatch
from fabric_jobs.server.model import CreationPayload, InvokeType, JobKey, JobRecord, JobStatus, NewJob, now_ms
from fabric_jobs.server.settings import ServiceSettings
from fabric_jobs.server.store import JobStore, ListQuery
from fabric_jobs.server.store.base import JobFilter, SearchQuery
from fabric_jobs.server.store.changes import ChangeFeed, Changes

logger = logging.getLogger(__name__)

NOT_ENDED = frozenset({JobStatus.NOT_STARTED, JobStatus.IN_PROGRESS})
CANCEL_CONCURRENCY = 16
"""How many cancels of a cancel_matching call run at once: a store statement (and an abort) each."""
CANCEL_PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class CancelledMatching:
    asked: int
    """Jobs not ended whose cancel this call asked (not asked before)."""
    ended: int
    """Of those, how many had ended when the call returned."""


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
        created_ms = now_ms()
        start_deadline_ms, timeout_ms = deadlines_at_create(job_type, self._settings, created_ms)
        record, created = await self._store.insert(
            NewJob(
                key,
                invoke_type,
                creation_payload.text,
                created_ms,
                trace_context,
                caller,
                credential,
                start_deadline_ms=start_deadline_ms,
                timeout_ms=timeout_ms,
            )
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
        await self._dispatch.submit(key, record.start_turn)
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
            record, _ = await self._ask_cancel(key)
            if record.status.is_terminal:
                return record
            return await self._until_terminal(record, changes, self._settings.cancel_wait)

    async def _ask_cancel(self, key: JobKey) -> tuple[JobRecord, bool]:
        """The cancel's one statement, and the handler told when the job still runs; no wait. The job as it is then,
        and whether this call asked (False: it had ended, or its cancel was asked before)."""
        record, asked = await self._store.ask_cancel(key, now_ms())
        if record is None:
            raise not_found(key)
        self._feed.publish(record)
        logger.info("job %s: cancel asked; it is %s", key, record.status)
        if not record.status.is_terminal:
            await self._dispatch.cancel(key)
        return record, asked

    async def cancel_matching(self, job_filter: JobFilter) -> CancelledMatching:
        """Cancel every job of the filter that has not ended and whose cancel was not asked before, as `cancel` does
        each one (at most CANCEL_CONCURRENCY at once), then wait up to the cancel wait for them all to end.

        The jobs are found page by page, newest first, from the state at each page's read: a job created once the
        call has begun may be left out."""
        query = SearchQuery(replace(job_filter, statuses=job_filter.statuses or NOT_ENDED), CANCEL_PAGE_SIZE)
        limit = asyncio.Semaphore(CANCEL_CONCURRENCY)
        asked: list[JobRecord] = []
        waiting: list[tuple[JobRecord, Changes, contextlib.ExitStack]] = []

        async def ask(key: JobKey) -> None:
            subscription = contextlib.ExitStack()
            changes = subscription.enter_context(self._feed.subscribe(key))  # before the statement: see cancel()
            kept = False
            try:
                async with limit:
                    record, did_ask = await self._ask_cancel(key)
                if did_ask:
                    asked.append(record)
                    if not record.status.is_terminal:
                        waiting.append((record, changes, subscription))
                        kept = True
            except FabricError:  # deleted since its page was read
                pass
            finally:
                if not kept:
                    subscription.close()

        try:
            while True:
                records, next_token = await self._store.search(query)
                await asyncio.gather(*(ask(record.key) for record in records if not record.cancel_requested))
                if next_token is None:
                    break
                query = replace(query, page_token=next_token)
            waited = await asyncio.gather(
                *(self._until_terminal(record, changes, self._settings.cancel_wait) for record, changes, _ in waiting)
            )
        finally:
            for _, _, subscription in waiting:
                subscription.close()
        still_running = sum(not record.status.is_terminal for record in waited)
        result = CancelledMatching(asked=len(asked), ended=len(asked) - still_running)
        logger.info("cancel of every job of %s: %d asked, %d ended", job_filter, result.asked, result.ended)
        return result

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
