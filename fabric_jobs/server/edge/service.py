"""The gRPC JobService: protobuf in, JobManager call, protobuf out. Errors are raised, the interceptor maps them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from fabric_jobs.server.edge import requests as validation
from fabric_jobs.server.edge.convert import record_to_pb
from fabric_jobs.server.lifecycle.manager import JobManager
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc

Context = grpc.aio.ServicerContext[Any, Any]


class JobService(pb_grpc.JobServiceServicer):
    def __init__(self, manager: JobManager) -> None:
        self._manager = manager

    async def CreateJobInstance(
        self, request: pb.CreateJobInstanceRequest, context: Context
    ) -> pb.CreateJobInstanceResponse:
        key, invoke_type, creation_payload, on_behalf_of = validation.create_request(request)
        record, created = await self._manager.create(
            key, invoke_type, creation_payload, caller=on_behalf_of.caller, assertion=on_behalf_of.assertion
        )
        return pb.CreateJobInstanceResponse(job_instance=record_to_pb(record), created=created)

    async def GetJobInstance(self, request: pb.GetJobInstanceRequest, context: Context) -> pb.GetJobInstanceResponse:
        record = await self._manager.get(validation.job_key(request))
        return pb.GetJobInstanceResponse(job_instance=record_to_pb(record))

    async def CancelJobInstance(
        self, request: pb.CancelJobInstanceRequest, context: Context
    ) -> pb.CancelJobInstanceResponse:
        record = await self._manager.cancel(validation.job_key(request))
        return pb.CancelJobInstanceResponse(job_instance=record_to_pb(record))

    async def ListJobInstances(
        self, request: pb.ListJobInstancesRequest, context: Context
    ) -> pb.ListJobInstancesResponse:
        query = validation.list_query(request)
        records, next_token = await self._manager.list(query)
        return pb.ListJobInstancesResponse(
            job_instances=[record_to_pb(record) for record in records], next_page_token=next_token or ""
        )

    async def WatchJobInstance(
        self, request: pb.WatchJobInstanceRequest, context: Context
    ) -> AsyncIterator[pb.WatchJobInstanceResponse]:
        async for record in self._manager.watch(validation.job_key(request)):
            yield pb.WatchJobInstanceResponse(job_instance=record_to_pb(record))
