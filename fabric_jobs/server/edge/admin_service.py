"""The gRPC AdminService: protobuf in, JobAdmin call, protobuf out. Errors are raised, the interceptor maps them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from fabric_jobs.server.edge import requests as validation
from fabric_jobs.server.edge.convert import STATUS_TO_PB, record_to_pb
from fabric_jobs.server.lifecycle.admin import JobAdmin
from fabric_jobs.v1 import admin_service_pb2 as pb
from fabric_jobs.v1 import admin_service_pb2_grpc as pb_grpc

Context = grpc.aio.ServicerContext[Any, Any]


class AdminService(pb_grpc.AdminServiceServicer):
    def __init__(self, admin: JobAdmin) -> None:
        self._admin = admin

    async def SearchJobInstances(
        self, request: pb.SearchJobInstancesRequest, context: Context
    ) -> pb.SearchJobInstancesResponse:
        records, next_token = await self._admin.search(validation.search_query(request))
        return pb.SearchJobInstancesResponse(
            job_instances=[record_to_pb(record) for record in records], next_page_token=next_token or ""
        )

    async def CountJobInstances(
        self, request: pb.CountJobInstancesRequest, context: Context
    ) -> pb.CountJobInstancesResponse:
        counts = await self._admin.count(validation.job_filter(request))
        return pb.CountJobInstancesResponse(
            counts=[
                pb.JobInstanceStatusCount(status=value, count=counts.get(status, 0))
                for status, value in STATUS_TO_PB.items()
            ],
            total=sum(counts.values()),
        )

    async def ListJobInstanceTransitions(
        self, request: pb.ListJobInstanceTransitionsRequest, context: Context
    ) -> pb.ListJobInstanceTransitionsResponse:
        record, transitions = await self._admin.history(validation.job_key(request))
        response = pb.ListJobInstanceTransitionsResponse(job_instance=record_to_pb(record))
        for transition in transitions:
            step = response.transitions.add(
                status=STATUS_TO_PB[transition.status], cancel_requested=transition.cancel_requested
            )
            step.time.FromMilliseconds(transition.at_ms)
        return response

    async def WatchJobInstanceChanges(  # the initial metadata is sent once the watch sees every later change
        self, request: pb.WatchJobInstanceChangesRequest, context: Context
    ) -> AsyncIterator[pb.WatchJobInstanceChangesResponse]:
        job_filter = validation.job_filter(request)

        async def started() -> None:
            await context.send_initial_metadata(())

        async for record in self._admin.watch_changes(job_filter, started):
            yield pb.WatchJobInstanceChangesResponse(job_instance=record_to_pb(record))

    async def PurgeJobInstances(
        self, request: pb.PurgeJobInstancesRequest, context: Context
    ) -> pb.PurgeJobInstancesResponse:
        return pb.PurgeJobInstancesResponse(purged=await self._admin.purge(validation.purge_request(request)))

    async def CancelJobInstances(
        self, request: pb.CancelJobInstancesRequest, context: Context
    ) -> pb.CancelJobInstancesResponse:
        result = await self._admin.cancel_matching(validation.cancel_filter(request))
        return pb.CancelJobInstancesResponse(asked=result.asked, ended=result.ended)
