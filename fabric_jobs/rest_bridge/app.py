"""create_app: the Starlette application of the REST bridge."""

from __future__ import annotations

import logging

import grpc
from grpc_health.v1 import health_pb2_grpc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fabric_jobs.errors import ErrorCode
from fabric_jobs.observability import tracing
from fabric_jobs.rest_bridge.auth import Authenticator
from fabric_jobs.rest_bridge.errors import HttpError, error_response, http_error
from fabric_jobs.rest_bridge.health import ReadinessEndpoint, healthz
from fabric_jobs.rest_bridge.jobs import JobsEndpoints
from fabric_jobs.rest_bridge.metrics import prometheus_metrics
from fabric_jobs.rest_bridge.middleware import RequestMiddleware
from fabric_jobs.rest_bridge.openapi import OpenApiEndpoint
from fabric_jobs.rest_bridge.settings import BridgeSettings
from fabric_jobs.v1 import job_service_pb2_grpc

logger = logging.getLogger(__name__)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpError)
    return error_response(exc)


async def _starlette_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        error = http_error(ErrorCode.NOT_FOUND, f"No resource at {request.url.path}", ("path",))
    elif exc.status_code == 405:
        allowed = _methods_of_path(request)
        message = f"Method {request.method} is not allowed here; allowed: {allowed}"
        error = http_error(ErrorCode.METHOD_NOT_ALLOWED, message, ("method",))
        error.headers["Allow"] = allowed
    else:
        error = http_error(ErrorCode.INVALID_REQUEST, exc.detail, status=exc.status_code)
    return error_response(error)


def _methods_of_path(request: Request) -> str:
    """Every method some route takes at this path: Starlette's own Allow names only the first route's."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(request.scope["path"]):
            methods |= route.methods
    return ", ".join(sorted(methods))


def create_app(
    settings: BridgeSettings, channel: grpc.aio.Channel, *, authenticator: Authenticator | None = None
) -> Starlette:
    """The bridge, calling the JobService over `channel` (in-process or gRPC), which its caller opens and closes.

    Without an authenticator (dev mode) any caller is accepted."""
    if authenticator is None:
        logger.warning("REST bridge authentication is OFF (dev mode): any caller is accepted")
    base = settings.base_path
    jobs = JobsEndpoints(settings, job_service_pb2_grpc.JobServiceStub(channel), authenticator)
    readiness = ReadinessEndpoint(health_pb2_grpc.HealthStub(channel), settings.request_timeout_seconds)
    routes = [
        *jobs.routes(base),
        Route(f"{base}/healthz", healthz, methods=["GET"], name="healthz"),
        Route(f"{base}/readyz", readiness.handle, methods=["GET"], name="readyz"),
        Route(f"{base}/openapi.json", OpenApiEndpoint(base).handle, methods=["GET"], name="openapi"),
        Route(f"{base}/metrics", prometheus_metrics, methods=["GET"], name="metrics"),
    ]
    middleware = [Middleware(RequestMiddleware, route_names={route.endpoint: route.name for route in routes})]
    if tracing.enabled():
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        middleware.insert(
            0,
            Middleware(OpenTelemetryMiddleware, tracer_provider=tracing.provider(), exclude_spans=["receive", "send"]),
        )
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HttpError: _http_error, HTTPException: _starlette_http_exception},
    )
    app.router.redirect_slashes = False  # a trailing slash is 404, never a redirect built from the Host header
    return app
