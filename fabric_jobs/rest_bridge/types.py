"""The shapes the bridge depends on: the JobService stub and the health check, as protocols."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Protocol

from grpc_health.v1 import health_pb2

from fabric_jobs.v1 import job_service_pb2 as pb

Metadata = Sequence[tuple[str, str]]


class JobServiceStubLike(Protocol):
    """The three calls the bridge makes; fabric_jobs.v1.job_service_pb2_grpc.JobServiceStub fits."""

    def CreateJobInstance(
        self, request: pb.CreateJobInstanceRequest, *, timeout: float | None = ..., metadata: Metadata | None = ...
    ) -> Awaitable[pb.CreateJobInstanceResponse]: ...

    def GetJobInstance(
        self, request: pb.GetJobInstanceRequest, *, timeout: float | None = ..., metadata: Metadata | None = ...
    ) -> Awaitable[pb.GetJobInstanceResponse]: ...

    def CancelJobInstance(
        self, request: pb.CancelJobInstanceRequest, *, timeout: float | None = ..., metadata: Metadata | None = ...
    ) -> Awaitable[pb.CancelJobInstanceResponse]: ...


class HealthStubLike(Protocol):
    """The standard gRPC health check; grpc_health.v1.health_pb2_grpc.HealthStub fits."""

    def Check(
        self, request: health_pb2.HealthCheckRequest, *, timeout: float | None = ..., metadata: Metadata | None = ...
    ) -> Awaitable[health_pb2.HealthCheckResponse]: ...
