"""JobsClient: the JobService for a workload's own services, asyncio.

async with JobsClient.connect("dns:///fabric-jobs-grpc:50051", tls=Tls.from_files(ca="ca.pem")) as jobs:
    await jobs.create(key, payload={"durationSeconds": 5})
    final = await jobs.wait(key, timeout=60)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterable, Mapping
from typing import Any, Unpack

import grpc

from fabric_jobs import payload as payloads
from fabric_jobs.client._calls import CallOptions
from fabric_jobs.client._service import ServiceClient
from fabric_jobs.client.errors import JobsError, ServiceError, TransportError, WaitTimeout
from fabric_jobs.client.results import Created, JobState, Page, job_from_pb, page_from_pb
from fabric_jobs.keys import JobKey, key_to_pb
from fabric_jobs.status import INVOKE_TYPE_TO_PB, STATUS_TO_PB, InvokeType, JobStatus
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc

POLL_INTERVAL = 0.5
"""Seconds between two reads of a job's state by wait() once its Watch streams keep breaking."""
WATCH_BREAKS_BEFORE_POLLING = 3
"""Watch streams in a row that break before sending anything, after which wait() only polls."""


class JobsClient(ServiceClient):
    """The JobService: create, get, cancel, list, watch and wait for job instances.

    Every call takes CallOptions: `timeout` (seconds over all attempts; default the client's), `activity_id` and
    `request_id` (default: those of the request being handled, else fresh UUIDs). Get, Cancel and Create (the service
    deduplicates a Create with the same key and request) are retried on UNAVAILABLE and on retriable errors.
    Failures raise fabric_jobs.client.errors.
    """

    def _bind(self, channel: grpc.aio.Channel) -> None:
        self._stub = pb_grpc.JobServiceStub(channel)

    async def create(
        self,
        key: JobKey,
        payload: Mapping[str, Any] | None = None,
        *,
        invoke_type: InvokeType = InvokeType.MANUAL,
        **options: Unpack[CallOptions],
    ) -> Created:
        """Create the job instance and queue it. `payload` (a JSON object) reaches the handler exactly: integers
        stay integers, key order is kept. The same key with the same request again creates nothing."""
        request = pb.CreateJobInstanceRequest(key=key_to_pb(key), invoke_type=INVOKE_TYPE_TO_PB[invoke_type])
        if payload is not None:
            request.creation_payload_json = payloads.to_text(payload)
        reply = await self._calls.unary(self._stub.CreateJobInstance, request, safe=True, **options)
        return Created(job_from_pb(reply.job_instance), reply.created)

    async def get(self, key: JobKey, **options: Unpack[CallOptions]) -> JobState:
        reply = await self._calls.unary(
            self._stub.GetJobInstance, pb.GetJobInstanceRequest(key=key_to_pb(key)), safe=True, **options
        )
        return job_from_pb(reply.job_instance)

    async def cancel(self, key: JobKey, **options: Unpack[CallOptions]) -> JobState:
        """Cancel the job instance; its state when the call returns: Cancelled once the handler stopped (or never
        started), InProgress while a running handler is still stopping, unchanged for a finished job."""
        reply = await self._calls.unary(
            self._stub.CancelJobInstance, pb.CancelJobInstanceRequest(key=key_to_pb(key)), safe=True, **options
        )
        return job_from_pb(reply.job_instance)

    async def list(
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
        """One page of a tenant's job instances, newest first (empty filters match any; page_size 0 means 100)."""
        request = pb.ListJobInstancesRequest(
            tenant_id=tenant_id,
            workspace_id=workspace_id,
            item_type=item_type,
            item_id=item_id,
            job_type=job_type,
            statuses=sorted(STATUS_TO_PB[status] for status in set(statuses)),
            page_size=page_size,
            page_token=page_token or "",
        )
        reply = await self._calls.unary(self._stub.ListJobInstances, request, safe=True, **options)
        return page_from_pb(reply.job_instances, reply.next_page_token)

    async def watch(self, key: JobKey, **options: Unpack[CallOptions]) -> AsyncGenerator[JobState, None]:
        """The job's current state, then each change, ending after a terminal state. No deadline unless `timeout`;
        a broken stream raises (wait() resumes by itself)."""
        replies = self._calls.stream(
            self._stub.WatchJobInstance, pb.WatchJobInstanceRequest(key=key_to_pb(key)), **options
        )
        async for reply in replies:
            yield job_from_pb(reply.job_instance)

    async def wait(
        self, key: JobKey, *, poll_interval: float = POLL_INTERVAL, **options: Unpack[CallOptions]
    ) -> JobState:
        """The job's state once terminal (Completed, Failed or Cancelled). Follows Watch; when the stream breaks
        (the serving replica stopped), reads the state and watches again, and polls once streams keep breaking.
        Raises WaitTimeout after `timeout` seconds (default: no limit)."""
        loop = asyncio.get_running_loop()
        timeout = options.get("timeout")
        deadline = None if timeout is None else loop.time() + timeout
        activity_id, request_id = options.get("activity_id"), options.get("request_id")
        last: JobState | None = None
        breaks = 0

        def remaining() -> float | None:
            if deadline is None:
                return None
            left = deadline - loop.time()
            if left <= 0:
                raise WaitTimeout(f"job {key} did not end within {timeout:g}s", last)
            return left

        while True:
            if breaks < WATCH_BREAKS_BEFORE_POLLING:
                try:
                    async for state in self.watch(
                        key, timeout=remaining(), activity_id=activity_id, request_id=request_id
                    ):
                        last, breaks = state, 0
                        if state.is_terminal:
                            return state
                except (TransportError, ServiceError) as exc:
                    if isinstance(exc, ServiceError) and not exc.retriable:
                        raise
                    remaining()
                breaks += 1
                await asyncio.sleep(_capped(self._calls.retry.backoff(breaks, self._calls.rng), remaining()))
            try:
                left = remaining()
                call_timeout = None if left is None else min(left, self._calls.timeout)
                last = await self.get(key, timeout=call_timeout, activity_id=activity_id, request_id=request_id)
            except JobsError as exc:
                if isinstance(exc, ServiceError) and not exc.retriable:
                    raise
                await asyncio.sleep(_capped(poll_interval, remaining()))
                continue
            if last.is_terminal:
                return last
            if breaks >= WATCH_BREAKS_BEFORE_POLLING:
                await asyncio.sleep(_capped(poll_interval, remaining()))


def _capped(delay: float, remaining: float | None) -> float:
    return delay if remaining is None else min(delay, remaining)
