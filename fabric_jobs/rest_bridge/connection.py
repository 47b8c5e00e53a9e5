"""The bridge's link to the JobService: stubs given by the caller, or a grpc.aio channel opened in the lifespan."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2_grpc

from fabric_jobs.errors import ErrorCode, ErrorDetails, ErrorSource
from fabric_jobs.rest_bridge.errors import HttpError
from fabric_jobs.rest_bridge.types import HealthStubLike, JobServiceStubLike
from fabric_jobs.v1 import job_service_pb2_grpc


class JobServiceConnection:
    def __init__(self, stub: JobServiceStubLike | None = None, health: HealthStubLike | None = None) -> None:
        self._stub = stub
        self._health = health
        self._channel: grpc.aio.Channel | None = None

    @property
    def stub(self) -> JobServiceStubLike:
        if self._stub is None:
            raise HttpError(
                503,
                ErrorDetails(
                    ErrorCode.SERVICE_UNAVAILABLE,
                    "The bridge is not connected to the job service yet. Retry later.",
                    source=ErrorSource.SYSTEM,
                    is_permanent=False,
                ),
            )
        return self._stub

    @property
    def health(self) -> HealthStubLike | None:
        return self._health

    @property
    def owns_channel(self) -> bool:
        return self._channel is not None

    def open(self, target: str) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        self._stub = job_service_pb2_grpc.JobServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    async def close(self) -> None:
        if self._channel is not None:
            channel, self._channel = self._channel, None
            self._stub = None
            self._health = None
            await channel.close(grace=None)
