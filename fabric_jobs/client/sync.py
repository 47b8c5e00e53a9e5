"""SyncJobsClient and SyncAdminClient: JobsClient and AdminClient for blocking code (scripts, plain functions),
each call run on an event loop in a thread of its own and waited for."""

from __future__ import annotations

import asyncio
import datetime
import queue
import random
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar, Unpack

from fabric_jobs.client._calls import CallOptions
from fabric_jobs.client._loop import LoopThread
from fabric_jobs.client._service import DEFAULT_TIMEOUT
from fabric_jobs.client.admin import ANY_JOB, AdminClient
from fabric_jobs.client.channel import ChannelOptions, Tls
from fabric_jobs.client.jobs import POLL_INTERVAL, JobsClient
from fabric_jobs.client.results import CancelledAll, Counts, Created, History, JobFilter, JobState, Page
from fabric_jobs.client.retries import RetryBudget, RetryPolicy
from fabric_jobs.keys import JobKey
from fabric_jobs.status import InvokeType, JobStatus

T = TypeVar("T")
_END = object()


class _AsyncClient(Protocol):
    @classmethod
    def connect(
        cls,
        target: str,
        *,
        tls: Tls | None = ...,
        options: ChannelOptions = ...,
        timeout: float = ...,
        retry: RetryPolicy | None = ...,
        budget: RetryBudget | None = ...,
        rng: random.Random | None = ...,
    ) -> Self: ...

    async def close(self) -> None: ...


C = TypeVar("C", bound=_AsyncClient)


class _Blocking(Generic[C]):
    """What both blocking clients share: an async client driven on a loop thread, opened by `connect` (which then
    owns channel and thread) or given with the loop its channel belongs to."""

    _client_class: type[C]
    _thread_name: str

    def __init__(self, client: C, loop: LoopThread) -> None:
        self._client = client
        self._loop = loop
        self._owns_loop = False

    @classmethod
    def connect(
        cls,
        target: str,
        *,
        tls: Tls | None = None,
        options: ChannelOptions = (),
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        budget: RetryBudget | None = None,
        rng: random.Random | None = None,
    ) -> Self:
        loop = LoopThread(cls._thread_name)

        async def connect() -> C:
            return cls._client_class.connect(
                target, tls=tls, options=options, timeout=timeout, retry=retry, budget=budget, rng=rng
            )

        try:
            client = cls(loop.run(connect(), timeout), loop)
        except BaseException:
            loop.close()
            raise
        client._owns_loop = True
        return client

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        return self._loop.run(call, None)

    def close(self) -> None:
        """Close the channel and stop the loop thread, if this client opened them."""
        if self._owns_loop:
            self._run(self._client.close())
            self._loop.close()
            self._owns_loop = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class SyncJobsClient(_Blocking[JobsClient]):
    """JobsClient's calls, blocking: the same arguments, results and exceptions.

    `SyncJobsClient.connect(target, ...)` opens a channel (and a loop thread) of its own; `SyncJobsClient(jobs,
    loop)` drives an existing JobsClient on the loop its channel belongs to (the pytest plugin's in-process one).
    """

    _client_class = JobsClient
    _thread_name = "fabric-jobs-client"

    @property
    def jobs(self) -> JobsClient:
        return self._client

    def create(
        self,
        key: JobKey,
        payload: Mapping[str, Any] | None = None,
        *,
        invoke_type: InvokeType = InvokeType.MANUAL,
        **options: Unpack[CallOptions],
    ) -> Created:
        return self._run(self.jobs.create(key, payload, invoke_type=invoke_type, **options))

    def get(self, key: JobKey, **options: Unpack[CallOptions]) -> JobState:
        return self._run(self.jobs.get(key, **options))

    def cancel(self, key: JobKey, **options: Unpack[CallOptions]) -> JobState:
        return self._run(self.jobs.cancel(key, **options))

    def list(
        self,
        tenant_id: str,
        *,
        workspace_id: str = "",
        item_type: str = "",
        item_id: str = "",
        job_type: str = "",
        statuses: Iterable[JobStatus] = (),
        page_size: int = 0,
        page_token: str | None = None,
        **options: Unpack[CallOptions],
    ) -> Page:
        return self._run(
            self.jobs.list(
                tenant_id,
                workspace_id=workspace_id,
                item_type=item_type,
                item_id=item_id,
                job_type=job_type,
                statuses=statuses,
                page_size=page_size,
                page_token=page_token,
                **options,
            )
        )

    def watch(self, key: JobKey, **options: Unpack[CallOptions]) -> Iterator[JobState]:
        """The job's current state, then each change, ending after a terminal state; leaving the loop early
        cancels the stream."""
        return _blocking(self._loop, self.jobs.watch(key, **options))

    def wait(self, key: JobKey, *, poll_interval: float = POLL_INTERVAL, **options: Unpack[CallOptions]) -> JobState:
        return self._run(self.jobs.wait(key, poll_interval=poll_interval, **options))


class SyncAdminClient(_Blocking[AdminClient]):
    """AdminClient's calls, blocking: the same arguments, results and exceptions.

    `SyncAdminClient.connect(target, ...)` opens a channel (and a loop thread) of its own; `SyncAdminClient(admin,
    loop)` drives an existing AdminClient on the loop its channel belongs to."""

    _client_class = AdminClient
    _thread_name = "fabric-jobs-admin-client"

    @property
    def admin(self) -> AdminClient:
        return self._client

    def search(
        self,
        job_filter: JobFilter = ANY_JOB,
        *,
        page_size: int = 0,
        page_token: str | None = None,
        **options: Unpack[CallOptions],
    ) -> Page:
        return self._run(self.admin.search(job_filter, page_size=page_size, page_token=page_token, **options))

    def count(self, job_filter: JobFilter = ANY_JOB, **options: Unpack[CallOptions]) -> Counts:
        return self._run(self.admin.count(job_filter, **options))

    def history(self, key: JobKey, **options: Unpack[CallOptions]) -> History:
        return self._run(self.admin.history(key, **options))

    def watch_changes(self, job_filter: JobFilter = ANY_JOB, **options: Unpack[CallOptions]) -> Iterator[JobState]:
        """Each change from now on; leaving the loop cancels the stream."""
        return _blocking(self._loop, self.admin.watch_changes(job_filter, **options))

    def purge(
        self,
        older_than: datetime.timedelta,
        job_filter: JobFilter = ANY_JOB,
        *,
        dry_run: bool = False,
        **options: Unpack[CallOptions],
    ) -> int:
        return self._run(self.admin.purge(older_than, job_filter, dry_run=dry_run, **options))

    def cancel_all(self, job_filter: JobFilter, **options: Unpack[CallOptions]) -> CancelledAll:
        return self._run(self.admin.cancel_all(job_filter, **options))


def _blocking(loop: LoopThread, items: AsyncIterator[T]) -> Iterator[T]:
    """The items of an async iterator read on `loop`, handed to this thread one by one."""
    handed: queue.Queue[tuple[bool, Any]] = queue.Queue()

    async def pump() -> None:
        try:
            async for item in items:
                handed.put((True, item))
        except Exception as exc:
            handed.put((False, exc))
        else:
            handed.put((False, _END))

    future = asyncio.run_coroutine_threadsafe(pump(), loop.loop)
    try:
        while True:
            more, value = handed.get()
            if more:
                yield value
            elif value is _END:
                return
            else:
                raise value
    finally:
        future.cancel()
