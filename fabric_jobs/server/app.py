"""Start and stop the JobService: store, job manager, gRPC server with health and reflection."""

from __future__ import annotations

import logging
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection

from fabric_jobs.server.inprocess import InProcessChannel
from fabric_jobs.server.interceptors import RequestInterceptor
from fabric_jobs.server.manager import JobManager
from fabric_jobs.server.registry import JobRegistry
from fabric_jobs.server.service import JobService
from fabric_jobs.server.settings import ServiceSettings
from fabric_jobs.server.store import JobStore, open_store
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc

__all__ = ["JobServer", "ServiceSettings", "start_job_server"]

logger = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["JobService"].full_name
RPC_GRACE_SECONDS = 5.0


class JobServer:
    """A running JobService. `stop()` shuts it down gracefully; calling it twice is harmless."""

    def __init__(
        self,
        server: grpc.aio.Server,
        health_servicer: Any,
        manager: JobManager,
        store: JobStore,
        host: str,
        port: int,
    ) -> None:
        self._server = server
        self._health = health_servicer
        self.manager = manager
        self._store = store
        self.host = host
        self.port = port
        self._stopped = False
        self.in_process_channel = InProcessChannel(
            [
                (pb_grpc.add_JobServiceServicer_to_server, JobService(manager)),
                (health_pb2_grpc.add_HealthServicer_to_server, health_servicer),
            ]
        )
        """A channel to this server without sockets, for a bridge in the same process."""

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking calls, give calls in flight `grace` seconds, let handlers finish, record every outcome."""
        if self._stopped:
            return
        self._stopped = True
        await self._health.enter_graceful_shutdown()
        await self._server.stop(RPC_GRACE_SECONDS if grace is None else grace)
        await self.manager.stop()
        await self._store.close()
        logger.info("JobService stopped")


async def start_job_server(
    settings: ServiceSettings, registry: JobRegistry, *, host: str = "127.0.0.1", port: int = 0
) -> JobServer:
    """Open the store, recover jobs left by a previous run, and serve on host:port (0 picks a free port)."""
    store = open_store(settings.database)
    await store.open()
    manager = JobManager(store, registry, settings)
    server = grpc.aio.server(interceptors=[RequestInterceptor()], options=[("grpc.so_reuseport", 0)])
    pb_grpc.add_JobServiceServicer_to_server(JobService(manager), server)
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound_port = server.add_insecure_port(address)
    except RuntimeError as exc:
        await store.close()
        raise OSError(f"cannot listen on {address}: {exc}") from exc
    await manager.start()
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    logger.info("JobService listening on %s", address.rsplit(":", 1)[0] + f":{bound_port}")
    return JobServer(server, health_servicer, manager, store, host, bound_port)
