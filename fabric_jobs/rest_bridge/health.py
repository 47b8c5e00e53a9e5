"""GET {base}/healthz (the process lives) and GET {base}/readyz (the JobService answers its gRPC health check)."""

from __future__ import annotations

import logging

import grpc
from grpc_health.v1 import health_pb2
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fabric_jobs.errors import ErrorCode
from fabric_jobs.rest_bridge.errors import error_response, http_error
from fabric_jobs.rest_bridge.types import HealthStubLike

logger = logging.getLogger(__name__)

READINESS_TIMEOUT_SECONDS = 2.0


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _not_ready(message: str) -> Response:
    return error_response(http_error(ErrorCode.SERVICE_UNAVAILABLE, message))


class ReadinessEndpoint:
    def __init__(self, health: HealthStubLike, timeout_seconds: float) -> None:
        self._health = health
        self._timeout = min(timeout_seconds, READINESS_TIMEOUT_SECONDS)

    async def handle(self, request: Request) -> Response:
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(service=""), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            logger.warning("readiness: health check failed: %s %s", exc.code().name, exc.details())
            return _not_ready("The job service is not reachable.")
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            return _not_ready("The job service is not serving.")
        return JSONResponse({"status": "ready"})
