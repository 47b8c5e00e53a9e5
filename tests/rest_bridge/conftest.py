from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2_grpc

from fabric_jobs.rest_bridge.app import create_app
from fabric_jobs.rest_bridge.settings import BridgeSettings
from fabric_jobs.server.app import JobServer, ServiceSettings, start_job_server
from fabric_jobs.v1 import job_service_pb2_grpc
from tests.rest_bridge.client import BASE_PATH, Bridge, client_for
from tests.rest_bridge.jobs_for_tests import registry

CANCEL_WAIT = 0.5
CANCEL_GRACE = 1.0


@pytest.fixture
async def job_server(tmp_path: pathlib.Path) -> AsyncIterator[JobServer]:
    settings = ServiceSettings(
        database="sqlite:///" + str(tmp_path / "jobs.db"),
        cancel_wait=CANCEL_WAIT,
        cancel_grace=CANCEL_GRACE,
        shutdown_grace=0.5,
        max_threads=1,
    )
    server = await start_job_server(settings, registry)
    try:
        yield server
    finally:
        await server.stop(0)


@pytest.fixture
async def channel(job_server: JobServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(job_server.address) as channel:
        yield channel


@pytest.fixture
def bridge_settings() -> BridgeSettings:
    return BridgeSettings(base_path=BASE_PATH, request_timeout_seconds=5.0)


@pytest.fixture
async def bridge(bridge_settings: BridgeSettings, channel: grpc.aio.Channel) -> AsyncIterator[Bridge]:
    app = create_app(
        bridge_settings,
        job_service_pb2_grpc.JobServiceStub(channel),
        health=health_pb2_grpc.HealthStub(channel),
    )
    async with client_for(app) as client:
        yield Bridge(client)


@dataclass
class RecordingStub:
    """Stands in for the JobService where a test proves a request never reaches it."""

    calls: list[Any] = field(default_factory=list)

    async def _record(self, request: Any, **kwargs: Any) -> Any:
        self.calls.append(request)
        raise AssertionError(f"a rejected request reached gRPC: {request}")

    async def CreateJobInstance(self, request: Any, *, timeout: float | None = None, metadata: Any = None) -> Any:  # noqa: ASYNC109
        return await self._record(request)

    async def GetJobInstance(self, request: Any, *, timeout: float | None = None, metadata: Any = None) -> Any:  # noqa: ASYNC109
        return await self._record(request)

    async def CancelJobInstance(self, request: Any, *, timeout: float | None = None, metadata: Any = None) -> Any:  # noqa: ASYNC109
        return await self._record(request)


@pytest.fixture
def recording_stub() -> RecordingStub:
    return RecordingStub()


@pytest.fixture
async def offline_bridge(bridge_settings: BridgeSettings, recording_stub: RecordingStub) -> AsyncIterator[Bridge]:
    """The bridge in front of a stub that fails the test if anything reaches it."""
    async with client_for(create_app(bridge_settings, recording_stub)) as client:
        yield Bridge(client)
