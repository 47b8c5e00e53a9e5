from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, NoReturn

import grpc
import pytest
from google.protobuf.message import Message

from fabric_jobs.rest_bridge.app import create_app
from fabric_jobs.rest_bridge.settings import BridgeSettings
from fabric_jobs.server.app import JobServer
from fabric_jobs.server.edge.inprocess import InProcessChannel
from fabric_jobs.v1 import job_service_pb2_grpc
from tests.harness import CHANNELS, RunningServer, ServerFactory
from tests.jobs import registry
from tests.rest_bridge.client import BASE_PATH, Bridge, client_for


@pytest.fixture
async def bridge_server(start_server: ServerFactory) -> RunningServer:
    """The JobService the bridge tests call, running their jobs (tests/jobs.py) one at a time."""
    return await start_server(registry, max_threads=1)


@pytest.fixture
def job_server(bridge_server: RunningServer) -> JobServer:
    return bridge_server.server


@pytest.fixture(params=CHANNELS)
def channel(request: pytest.FixtureRequest, bridge_server: RunningServer) -> grpc.aio.Channel:
    """The JobService's in-process channel (what `serve` uses), then a real gRPC channel to its port."""
    return bridge_server.channel_of(request.param)


@pytest.fixture
def bridge_settings() -> BridgeSettings:
    return BridgeSettings(base_path=BASE_PATH, request_timeout_seconds=5.0)


@pytest.fixture
async def bridge(bridge_settings: BridgeSettings, channel: grpc.aio.Channel) -> AsyncIterator[Bridge]:
    async with client_for(create_app(bridge_settings, channel)) as client:
        yield Bridge(client)


class RecordingStub(job_service_pb2_grpc.JobServiceServicer):
    """Stands in for the JobService where a test proves a request never reaches it: records, then fails the test."""

    def __init__(self) -> None:
        self.calls: list[Message] = []

    def _reached(self, request: Message) -> NoReturn:
        self.calls.append(request)
        raise AssertionError(f"a rejected request reached gRPC: {request}")

    async def CreateJobInstance(self, request: Message, context: Any) -> NoReturn:
        self._reached(request)

    GetJobInstance = CancelJobInstance = ListJobInstances = CreateJobInstance

    def WatchJobInstance(self, request: Message, context: Any) -> NoReturn:
        self._reached(request)

    def channel(self) -> grpc.aio.Channel:
        """A channel to this servicer alone, through the same in-process path `serve` uses."""
        return InProcessChannel([(job_service_pb2_grpc.add_JobServiceServicer_to_server, self)]).as_channel()


@pytest.fixture
def recording_stub() -> RecordingStub:
    return RecordingStub()


@pytest.fixture
async def offline_bridge(bridge_settings: BridgeSettings, recording_stub: RecordingStub) -> AsyncIterator[Bridge]:
    """The bridge in front of a JobService that fails the test if anything reaches it."""
    async with client_for(create_app(bridge_settings, recording_stub.channel())) as client:
        yield Bridge(client)
