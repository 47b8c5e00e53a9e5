"""AdminClient: the AdminService for operators' tools, asyncio: job instances of every tenant, their counts and
history, and the stream of every change. Getting, cancelling and watching one job are JobsClient's."""

from __future__ import annotations

import datetime
from collections.abc import AsyncGenerator
from typing import Unpack

import grpc

from fabric_jobs.client._calls import CallOptions
from fabric_jobs.client._service import ServiceClient
from fabric_jobs.client.results import (
    CancelledAll,
    Counts,
    History,
    JobFilter,
    JobState,
    Page,
    counts_from_pb,
    filter_to_pb,
    history_from_pb,
    job_from_pb,
    page_from_pb,
)
from fabric_jobs.keys import JobKey, key_to_pb
from fabric_jobs.v1 import admin_service_pb2 as admin_pb
from fabric_jobs.v1 import admin_service_pb2_grpc as admin_grpc

ANY_JOB = JobFilter()


class AdminClient(ServiceClient):
    """The AdminService. Calls take `timeout`, `activity_id` and `request_id` as JobsClient's do; every call but
    watch_changes and purge is retried as JobsClient's Get is (cancel_all is idempotent)."""

    def _bind(self, channel: grpc.aio.Channel) -> None:
        self._stub = admin_grpc.AdminServiceStub(channel)

    async def search(
        self,
        job_filter: JobFilter = ANY_JOB,
        *,
        page_size: int = 0,
        page_token: str | None = None,
        **options: Unpack[CallOptions],
    ) -> Page:
        """One page of the job instances `job_filter` covers, across tenants, newest first (page_size 0: 100)."""
        request = admin_pb.SearchJobInstancesRequest(
            filter=filter_to_pb(job_filter), page_size=page_size, page_token=page_token or ""
        )
        reply = await self._calls.unary(self._stub.SearchJobInstances, request, safe=True, **options)
        return page_from_pb(reply.job_instances, reply.next_page_token)

    async def count(self, job_filter: JobFilter = ANY_JOB, **options: Unpack[CallOptions]) -> Counts:
        """How many job instances `job_filter` covers, by status (its `statuses` are ignored)."""
        reply = await self._calls.unary(
            self._stub.CountJobInstances,
            admin_pb.CountJobInstancesRequest(filter=filter_to_pb(job_filter)),
            safe=True,
            **options,
        )
        return counts_from_pb(reply)

    async def history(self, key: JobKey, **options: Unpack[CallOptions]) -> History:
        """The job instance as it is now and each step of its history, oldest first."""
        reply = await self._calls.unary(
            self._stub.ListJobInstanceTransitions,
            admin_pb.ListJobInstanceTransitionsRequest(key=key_to_pb(key)),
            safe=True,
            **options,
        )
        return history_from_pb(reply)

    async def watch_changes(
        self, job_filter: JobFilter = ANY_JOB, **options: Unpack[CallOptions]
    ) -> AsyncGenerator[JobState, None]:
        """The state of each job instance `job_filter` covers after each change from now on, until the caller
        stops reading (or `timeout`). A broken stream raises."""
        replies = self._calls.stream(
            self._stub.WatchJobInstanceChanges,
            admin_pb.WatchJobInstanceChangesRequest(filter=filter_to_pb(job_filter)),
            **options,
        )
        async for reply in replies:
            yield job_from_pb(reply.job_instance)

    async def purge(
        self,
        older_than: datetime.timedelta,
        job_filter: JobFilter = ANY_JOB,
        *,
        dry_run: bool = False,
        **options: Unpack[CallOptions],
    ) -> int:
        """Delete the ended job instances `job_filter` covers that ended at least `older_than` ago, with their
        history; how many (with dry_run: count them, delete nothing). Never retried but a dry run."""
        request = admin_pb.PurgeJobInstancesRequest(filter=filter_to_pb(job_filter), dry_run=dry_run)
        request.older_than.FromTimedelta(older_than)
        reply = await self._calls.unary(self._stub.PurgeJobInstances, request, safe=dry_run, **options)
        return reply.purged

    async def cancel_all(self, job_filter: JobFilter, **options: Unpack[CallOptions]) -> CancelledAll:
        """Cancel every job instance `job_filter` covers that has not ended, each as JobsClient.cancel would, and
        wait the service's cancel wait for them to end: what a workload does when an item is deleted. The filter
        must name a workspace_id or an item_id (InvalidRequest otherwise); its statuses, if any, among NotStarted
        and InProgress. Idempotent: a second call asks 0."""
        reply = await self._calls.unary(
            self._stub.CancelJobInstances,
            admin_pb.CancelJobInstancesRequest(filter=filter_to_pb(job_filter)),
            safe=True,
            **options,
        )
        return CancelledAll(asked=reply.asked, ended=reply.ended)
