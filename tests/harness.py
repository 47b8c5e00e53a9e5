"""The one test harness: the settings every test server starts from, a server factory over store and channel, and
`eventually()`, the one way a test waits for a state (polling with a deadline, never a bare sleep).

The fixtures built on it (tests/conftest.py and each folder's conftest.py) keep the names tests use:
`start_server`, `database`, `job_server`, `channel`, `bridge`, `start_service`, `service`.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol, TypeVar, overload

import grpc

from fabric_jobs import JobRegistry
from fabric_jobs.keys import KEY_FIELDS, JobKey
from fabric_jobs.server.app import JobServer, ServiceSettings, start_job_server
from fabric_jobs.server.backend import open_store
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc

T = TypeVar("T")

POLL_INTERVAL = 0.02
Channel = Literal["inprocess", "grpc"]
CHANNELS: tuple[Channel, ...] = ("inprocess", "grpc")

TEST_SETTINGS = ServiceSettings(
    database="", cancel_wait=0.5, cancel_grace=1.0, shutdown_grace=0.5, lease_seconds=2.0, max_threads=4
)
"""What every test server runs with unless the test says otherwise: a deployment's rules with shorter waits."""


@overload
async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, within: float = ..., what: str = ...
) -> T: ...  # pragma: no cover


@overload
async def eventually(
    probe: Callable[[], T | None], *, within: float = ..., what: str = ...
) -> T: ...  # pragma: no cover


async def eventually(probe: Callable[[], Any], *, within: float = 5.0, what: str = "the condition") -> Any:
    """Call `probe` (plain or async) every POLL_INTERVAL until it returns something true, and return that; fail
    after `within` seconds naming `what` and the last value seen."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        _fail_after(deadline, within, what, value)
        await asyncio.sleep(POLL_INTERVAL)


def eventually_blocking(
    probe: Callable[[], T | None], *, within: float = 5.0, what: str = "the condition", every: float = POLL_INTERVAL
) -> T:
    """eventually() for a plain test, which has no event loop to wait on: the same polling, sleeping between."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if value:
            return value
        _fail_after(deadline, within, what, value)
        time.sleep(every)


def _fail_after(deadline: float, within: float, what: str, value: object) -> None:
    if time.monotonic() > deadline:
        raise AssertionError(f"{what} did not hold within {within}s; last seen: {value!r}")


@dataclass
class RunningServer:
    """A started JobServer and a stub on a real gRPC channel to its port. `stop()` is idempotent."""

    server: JobServer
    channel: grpc.aio.Channel
    stub: pb_grpc.JobServiceAsyncStub
    settings: ServiceSettings

    def channel_of(self, kind: Channel) -> grpc.aio.Channel:
        """The in-process channel (what `serve` uses) or the real gRPC channel to the port."""
        return self.server.in_process_channel.as_channel() if kind == "inprocess" else self.channel

    async def stop(self) -> None:
        await self.channel.close(None)
        await self.server.stop(grace=1.0)


async def start_running_server(settings: ServiceSettings, registry: JobRegistry, **options: Any) -> RunningServer:
    """A JobServer on a free port (`options` as start_job_server takes them) and a stub connected to it."""
    server = await start_job_server(settings, registry, port=0, **options)
    channel = grpc.aio.insecure_channel(server.address)
    return RunningServer(server, channel, pb_grpc.JobServiceStub(channel), settings)


class ServerFactory(Protocol):
    def __call__(self, registry: JobRegistry, **settings: Any) -> Awaitable[RunningServer]: ...


@asynccontextmanager
async def server_factory(database: str, **options: Any) -> AsyncIterator[ServerFactory]:
    """Start servers on `database` (SQLite or PostgreSQL; tests may start several in turn) from TEST_SETTINGS and
    the test's own settings; every one is stopped at the end. `options` as start_job_server takes them."""
    started: list[RunningServer] = []

    async def start(registry: JobRegistry, **settings: Any) -> RunningServer:
        running = await start_running_server(replace(TEST_SETTINGS, database=database, **settings), registry, **options)
        started.append(running)
        return running

    try:
        yield start
    finally:
        for running in reversed(started):
            await running.stop()


async def assert_reports_coalesced(database: str, done: pb.JobInstance, interval: float) -> None:
    """The ended job `done` wrote its progress at least once and at most once per `interval` of its run (plus its
    last report): its stored version counts its changes, three of which are created, started and ended."""
    store = open_store(database)
    await store.open()
    try:
        record = await store.get(JobKey(*(getattr(done.key, field) for field in KEY_FIELDS)))
    finally:
        await store.close()
    assert record is not None
    writes = record.version - 3
    ran_seconds = (done.end_time.ToMilliseconds() - done.start_time.ToMilliseconds()) / 1000
    assert 1 <= writes <= ran_seconds / interval + 2, (writes, ran_seconds)
