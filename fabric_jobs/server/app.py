"""Start and stop the JobService (store, execution, job manager, gRPC server with health and reflection),
and the worker that runs handlers of job instances kept in PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection

from fabric_jobs.registry import JobRegistry
from fabric_jobs.server.backend import open_backend
from fabric_jobs.server.edge.admin_service import AdminService
from fabric_jobs.server.edge.inprocess import InProcessChannel
from fabric_jobs.server.edge.interceptors import RequestInterceptor
from fabric_jobs.server.edge.service import JobService
from fabric_jobs.server.lifecycle.admin import JobAdmin
from fabric_jobs.server.lifecycle.manager import JobManager
from fabric_jobs.server.lifecycle.retention import Pruner
from fabric_jobs.server.settings import ServiceSettings
from fabric_jobs.server.store import StoreError
from fabric_jobs.server.store.changes import ChangeFeed
from fabric_jobs.v1 import admin_service_pb2, admin_service_pb2_grpc
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc

__all__ = ["ADMIN_SERVICE_NAME", "JobServer", "ServiceSettings", "run_worker", "start_job_server"]

logger = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["JobService"].full_name
ADMIN_SERVICE_NAME = admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name
RPC_GRACE_SECONDS = 5.0


class JobServer:
    """A running JobService. `stop()` shuts it down gracefully; calling it twice is harmless."""

    def __init__(
        self,
        server: grpc.aio.Server | None,
        health_servicer: Any,
        manager: JobManager,
        admin: JobAdmin,
        resources: contextlib.AsyncExitStack,
        host: str,
        port: int | None,
    ) -> None:
        self._server = server
        self._health = health_servicer
        self.manager = manager
        self._admin = admin
        self._resources = resources
        self.host = host
        self.port = port
        self._stopped = False
        self.in_process_channel = InProcessChannel(
            [
                (pb_grpc.add_JobServiceServicer_to_server, JobService(manager)),
                (admin_service_pb2_grpc.add_AdminServiceServicer_to_server, AdminService(admin)),
                (health_pb2_grpc.add_HealthServicer_to_server, health_servicer),
            ]
        )
        """A channel to this server without sockets, for a bridge in the same process."""

    @property
    def address(self) -> str:
        if self.port is None:
            raise RuntimeError("this JobService listens on no port: it is reached through in_process_channel")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking calls, give calls in flight `grace` seconds, let handlers finish, record every outcome."""
        if self._stopped:
            return
        self._stopped = True
        await self._health.enter_graceful_shutdown()
        self._admin.close()
        if self._server is not None:
            await self._server.stop(RPC_GRACE_SECONDS if grace is None else grace)
        await self._resources.aclose()
        logger.info("JobService stopped")


async def start_job_server(
    settings: ServiceSettings,
    registry: JobRegistry,
    *,
    host: str = "127.0.0.1",
    port: int | None = 0,
    run_handlers: bool = True,
    credentials: grpc.ServerCredentials | None = None,
) -> JobServer:
    """Open the store, take up jobs left by a previous run, and serve on host:port (0 picks a free port;
    None opens no port: the service is reached only through its in-process channel, as in tests).

    On SQLite handlers always run in this process; on PostgreSQL only with `run_handlers` (`serve`), a
    `grpc` replica leaving them to workers. With `credentials` the port serves TLS, else plain text.
    """
    resources = contextlib.AsyncExitStack()
    try:
        backend = open_backend(settings.database)
        store = backend.store
        await store.open()
        resources.push_async_callback(store.close)
        server, bound_port = (None, None) if port is None else _listening_server(host, port, credentials)
        feed = ChangeFeed()
        dispatch = await resources.enter_async_context(
            backend.execution(registry, feed, settings, run_handlers=run_handlers)
        )
    except BaseException:
        await resources.aclose()
        raise
    manager = JobManager(store, registry, settings, dispatch, feed)
    admin = JobAdmin(store, feed, manager)
    if settings.retention_seconds > 0:
        pruner = Pruner(store, settings.retention_seconds, settings.prune_interval_seconds)
        pruner.start()
        resources.push_async_callback(pruner.stop)
    health_servicer = health_aio.HealthServicer()
    if server is not None:
        pb_grpc.add_JobServiceServicer_to_server(JobService(manager), server)
        admin_service_pb2_grpc.add_AdminServiceServicer_to_server(AdminService(admin), server)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                ADMIN_SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set(ADMIN_SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    job_server = JobServer(server, health_servicer, manager, admin, resources, host, bound_port)
    logger.info("JobService %s", "in process only" if server is None else f"listening on {job_server.address}")
    return job_server


def _listening_server(host: str, port: int, credentials: grpc.ServerCredentials | None) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server(interceptors=[RequestInterceptor()], options=[("grpc.so_reuseport", 0)])
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        if credentials is None:
            return server, server.add_insecure_port(address)
        return server, server.add_secure_port(address, credentials)
    except RuntimeError as exc:
        reason = str(exc).split(";")[0]
        raise OSError(f"cannot listen on {address}: {reason}") from exc


async def run_worker(
    settings: ServiceSettings, registry: JobRegistry, stop: asyncio.Event, *, started: Callable[[], None] = lambda: None
) -> None:
    """Run handlers of job instances kept in PostgreSQL until `stop` is set; then give running handlers the
    shutdown grace and record the rest Failed (retriable). `started` is called once jobs are being taken."""
    backend = open_backend(settings.database)
    if not backend.separate_workers:
        raise StoreError("a worker takes its jobs from PostgreSQL: give --database postgresql://…")
    store = backend.store
    await store.open()
    try:
        async with backend.execution(registry, ChangeFeed(), settings, run_handlers=True):
            logger.info("worker running at most %d job(s) at once", settings.worker_concurrency)
            started()
            await stop.wait()
    finally:
        await store.close()
