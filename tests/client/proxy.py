"""A real gRPC server in front of a JobService, for the client's tests: it forwards every call, records each call's
metadata, knows which Watch streams it serves, and fails the calls a test tells it to, the ways a network and a
service in trouble do."""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any, cast

import grpc

from fabric_jobs.errors import FabricError, service_unavailable
from fabric_jobs.server.edge.status_codes import to_grpc_status
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc

Context = grpc.aio.ServicerContext[Any, Any]


class Failure(enum.Enum):
    UNAVAILABLE = "UNAVAILABLE without details, as a channel reports an unreachable replica"
    SERVICE_UNAVAILABLE = "the service's own ServiceUnavailable (retriable ErrorDetails)"
    LOST_ANSWER = "the call reaches the service, its answer is lost (UNAVAILABLE)"


class Proxy(pb_grpc.JobServiceServicer):
    def __init__(self, upstream: grpc.aio.Channel) -> None:
        self._upstream = pb_grpc.JobServiceStub(upstream)
        self.calls: list[tuple[str, dict[str, str]]] = []
        self._failures: dict[str, list[Failure]] = defaultdict(list)
        self._always: dict[str, Failure] = {}
        self.watches = 0
        self.server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        pb_grpc.add_JobServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{self.port}"

    def fail(self, method: str, *failures: Failure) -> None:
        """Fail the next calls of `method` (CreateJobInstance, GetJobInstance, ...) these ways, one each."""
        self._failures[method].extend(failures)

    def fail_always(self, method: str, failure: Failure) -> None:
        self._always[method] = failure

    def heal(self) -> None:
        """Fail nothing from now on."""
        self._failures.clear()
        self._always.clear()

    def attempts(self, method: str) -> list[dict[str, str]]:
        """The metadata of each call of `method` that reached the proxy, in order."""
        return [metadata for name, metadata in self.calls if name == method]

    async def _forward(self, method: str, request: Any, context: Context) -> Any:
        self.calls.append((method, {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}))
        queued = self._failures[method]
        failure = queued.pop(0) if queued else self._always.get(method)
        if failure is Failure.UNAVAILABLE:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the proxy's replica is unreachable")
        if failure is Failure.SERVICE_UNAVAILABLE:
            status = to_grpc_status(FabricError(service_unavailable("The job store is unavailable; retry later.")))
            await context.abort(status.code, status.details, trailing_metadata=status.trailing_metadata)
        try:
            reply = await getattr(self._upstream, method)(request)
        except grpc.aio.AioRpcError as exc:
            trailing = cast(tuple[tuple[str, str | bytes], ...], tuple(exc.trailing_metadata() or ()))
            await context.abort(exc.code(), exc.details() or "", trailing_metadata=trailing)
        if failure is Failure.LOST_ANSWER:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the connection broke before the answer arrived")
        return reply

    async def CreateJobInstance(
        self, request: pb.CreateJobInstanceRequest, context: Context
    ) -> pb.CreateJobInstanceResponse:
        reply: pb.CreateJobInstanceResponse = await self._forward("CreateJobInstance", request, context)
        return reply

    async def GetJobInstance(self, request: pb.GetJobInstanceRequest, context: Context) -> pb.GetJobInstanceResponse:
        reply: pb.GetJobInstanceResponse = await self._forward("GetJobInstance", request, context)
        return reply

    async def CancelJobInstance(
        self, request: pb.CancelJobInstanceRequest, context: Context
    ) -> pb.CancelJobInstanceResponse:
        reply: pb.CancelJobInstanceResponse = await self._forward("CancelJobInstance", request, context)
        return reply

    async def ListJobInstances(
        self, request: pb.ListJobInstancesRequest, context: Context
    ) -> pb.ListJobInstancesResponse:
        reply: pb.ListJobInstancesResponse = await self._forward("ListJobInstances", request, context)
        return reply

    async def WatchJobInstance(
        self, request: pb.WatchJobInstanceRequest, context: Context
    ) -> AsyncIterator[pb.WatchJobInstanceResponse]:
        self.calls.append(("WatchJobInstance", {}))
        self.watches += 1
        try:
            async for reply in self._upstream.WatchJobInstance(request):
                yield reply
        finally:
            self.watches -= 1

    async def start(self) -> Proxy:
        await self.server.start()
        return self

    async def stop(self) -> None:
        await self.server.stop(0)
