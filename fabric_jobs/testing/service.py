"""FabricJobsService: the real JobService on a SQLite file and the REST bridge before it, for tests.

The service runs on an event loop in a thread of its own, so tests stay plain functions (no async
plugin needed) and may still be async ones. The gRPC stub reaches it through the in-process channel
and the REST client through ASGI: no sockets, unless `listen=True` also opens a loopback gRPC port.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fabric_jobs.client import JobsClient, JobsError, SyncJobsClient
from fabric_jobs.client._loop import LoopThread
from fabric_jobs.registry import JobRegistry
from fabric_jobs.rest_bridge.app import create_app
from fabric_jobs.rest_bridge.settings import BridgeSettings
from fabric_jobs.server.app import JobServer, start_job_server
from fabric_jobs.server.settings import ServiceSettings
from fabric_jobs.testing.channel import BlockingChannel
from fabric_jobs.testing.jobs import TERMINAL, JobRef, wait_failed
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    import httpx

TEST_SETTINGS: Mapping[str, Any] = {"cancel_grace": 5.0, "shutdown_grace": 0.1, "max_threads": 4}
"""ServiceSettings for tests where they differ from the defaults: a forced stop comes sooner, and a handler
still running when its test ends is stopped at once."""
SETTINGS_FIELDS = frozenset(field.name for field in dataclasses.fields(ServiceSettings)) - {"database"}
START_TIMEOUT = 30.0
DEFAULT_WAIT = 10.0


class FabricJobsService:
    """A started JobService with `registry`'s job types, its REST bridge (authentication off) and helpers.

    `client` is a SyncJobsClient and `stub` a blocking JobServiceStub, both over the in-process channel; `rest` an
    httpx.Client of the bridge, answering exactly as Fabric would be answered. The helpers call the bridge as
    Fabric does, follow the job with the client's Watch, and return the job's state as Fabric reads it.
    """

    def __init__(self, registry: JobRegistry, database: str, *, listen: bool = False, **settings: Any) -> None:
        unknown = settings.keys() - SETTINGS_FIELDS
        if unknown:
            known = ", ".join(["listen", *sorted(SETTINGS_FIELDS)])
            raise TypeError(f"unknown fabric_jobs option(s) {', '.join(sorted(unknown))}; known: {known}")
        self.settings = ServiceSettings(database=database, **{**TEST_SETTINGS, **settings})
        self._loop = LoopThread()
        try:
            start = start_job_server(self.settings, registry, port=0 if listen else None)
            self.server: JobServer = self._loop.run(start, START_TIMEOUT)
        except BaseException:
            self._loop.close()
            raise
        channel = self.server.in_process_channel
        self.stub = pb_grpc.JobServiceStub(BlockingChannel(self._loop, channel).as_channel())
        self.client = SyncJobsClient(JobsClient(channel.as_channel()), self._loop)
        self.app = create_app(BridgeSettings(), channel.as_channel())
        self._rest: httpx.Client | None = None
        self._stopped = False

    @property
    def grpc_address(self) -> str:
        """host:port of the loopback gRPC port (only with `listen=True`)."""
        return self.server.address

    @property
    def rest(self) -> httpx.Client:
        """An httpx.Client of the REST bridge; needs httpx (`pip install 'fabric-jobs[testing]'`)."""
        if self._rest is None:
            from fabric_jobs.testing.rest import rest_client

            self._rest = rest_client(self.app, self._loop)
        return self._rest

    def stop(self) -> None:
        """Stop the service (running handlers get `shutdown_grace`) and its loop. Calling it twice is harmless."""
        if self._stopped:
            return
        self._stopped = True
        if self._rest is not None:
            self._rest.close()
        try:
            self._loop.run(self.server.stop(grace=0), START_TIMEOUT)
        finally:
            self._loop.close()

    def post_create(
        self, job: JobRef, payload: Mapping[str, Any] | None = None, *, invoke_type: str | int = "Manual"
    ) -> httpx.Response:
        """Fabric's Create call for `job`, its response unchecked (202, or an ErrorResponse)."""
        body: dict[str, Any] = {"invokeType": invoke_type}
        if payload is not None:
            body["creationPayload"] = payload
        return self.rest.post(job.path, headers=job.headers(), json=body)

    def create(
        self,
        item_type: str,
        job_type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        invoke_type: str | int = "Manual",
    ) -> JobRef:
        """Create a job instance with fresh ids; fails unless the bridge answers 202."""
        __tracebackhide__ = True
        job = JobRef(item_type, job_type)
        response = self.post_create(job, payload, invoke_type=invoke_type)
        if response.status_code != 202:
            raise AssertionError(f"Create of job {job} answered {response.status_code}: {response.text}")
        return job

    def state(self, job: JobRef) -> dict[str, Any]:
        """The job's ItemJobInstanceState, as Fabric's Get reads it."""
        __tracebackhide__ = True
        response = self.rest.get(job.path, headers=job.headers())
        if response.status_code != 200:
            raise AssertionError(f"Get of job {job} answered {response.status_code}: {response.text}")
        return _json_object(response)

    def wait_for(self, job: JobRef, *statuses: str, timeout: float = DEFAULT_WAIT) -> dict[str, Any]:
        """Follow the job's changes until it has one of `statuses` (default: any terminal one); its state then.

        Fails after `timeout` seconds, or at once when it ends in another terminal status, with its last state."""
        __tracebackhide__ = True
        wanted = statuses or tuple(sorted(TERMINAL))
        try:
            for change in self.client.watch(job.job_key, timeout=timeout):
                if change.status in wanted or change.is_terminal:
                    state = self.state(job)
                    if state.get("status") in wanted:
                        return state
                    if state.get("status") in TERMINAL:
                        break
        except JobsError:
            pass
        state = self.state(job)
        if state.get("status") in wanted:
            return state
        raise AssertionError(wait_failed(job, wanted, state, timeout))

    def create_and_wait(
        self,
        item_type: str,
        job_type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        status: str = "Completed",
        invoke_type: str | int = "Manual",
        timeout: float = DEFAULT_WAIT,
    ) -> dict[str, Any]:
        """Create a job instance and wait until it has `status`; its state then."""
        __tracebackhide__ = True
        job = self.create(item_type, job_type, payload, invoke_type=invoke_type)
        return self.wait_for(job, status, timeout=timeout)

    def cancel(self, job: JobRef) -> dict[str, Any]:
        """Fabric's Cancel call; the state it answers (Cancelled, or still InProgress while the handler stops)."""
        __tracebackhide__ = True
        response = self.rest.post(job.path + "/cancel", headers=job.headers())
        if response.status_code != 200:
            raise AssertionError(f"Cancel of job {job} answered {response.status_code}: {response.text}")
        return _json_object(response)

    def cancel_and_wait(
        self, job: JobRef, status: str = "Cancelled", *, timeout: float = DEFAULT_WAIT
    ) -> dict[str, Any]:
        """Cancel the job and wait until it has `status`; its state then."""
        __tracebackhide__ = True
        self.cancel(job)
        return self.wait_for(job, status, timeout=timeout)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    body = json.loads(response.content)
    assert isinstance(body, dict), body
    return body
