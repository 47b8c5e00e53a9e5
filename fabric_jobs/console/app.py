"""create_console_app: the console's Starlette app, served on the admin port, never on the Fabric-facing one."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import grpc
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from fabric_jobs.client import ServiceError, TransportError
from fabric_jobs.console.access import ConsoleAccess, Tickets
from fabric_jobs.console.api import ConsoleApi
from fabric_jobs.rest_bridge.errors import HttpError, error_response
from fabric_jobs.rest_bridge.grpc_errors import from_client_error
from fabric_jobs.rest_bridge.middleware import RequestMiddleware

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class ConsoleSettings:
    token: str | None = None
    """The admin token every API call must bear; None: no login (loopback only, checked by the command line)."""
    request_timeout_seconds: float = 10.0


async def _index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)


async def _no_icon(request: Request) -> Response:
    return Response(status_code=204)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpError)
    return error_response(exc)


async def _call_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError | TransportError)
    return error_response(from_client_error(exc))


async def _to_console(request: Request) -> Response:
    return RedirectResponse("/console", status_code=307)


def create_console_app(settings: ConsoleSettings, channel: grpc.aio.Channel, stop: asyncio.Event) -> Starlette:
    """The console, calling the JobService and AdminService over `channel`; its event streams end when `stop` is
    set."""
    tickets = Tickets()
    api = ConsoleApi(channel, tickets, settings.request_timeout_seconds, stop)
    routes = [
        Route("/", _to_console, methods=["GET"]),
        Route("/favicon.ico", _no_icon, methods=["GET"]),
        Route("/console", _index, methods=["GET"]),
        Route("/console/api/jobs", api.jobs, methods=["GET"]),
        Route("/console/api/counts", api.counts, methods=["GET"]),
        Route("/console/api/job", api.job, methods=["GET"]),
        Route("/console/api/cancel", api.cancel, methods=["POST"]),
        Route("/console/api/cancel-all", api.cancel_all, methods=["POST"]),
        Route("/console/api/tickets", api.ticket, methods=["POST"]),
        Route("/console/api/events", api.events, methods=["GET"]),
        Mount("/console/static", StaticFiles(directory=STATIC), name="static"),
    ]
    route_names: dict[object, str] = {
        route.endpoint: f"Console_{route.endpoint.__name__.lstrip('_')}" for route in routes if isinstance(route, Route)
    }
    route_names.update({route.app: f"Console_{route.name}" for route in routes if isinstance(route, Mount)})
    middleware = [
        Middleware(RequestMiddleware, route_names=route_names),
        Middleware(ConsoleAccess, token=settings.token, tickets=tickets),
    ]
    console = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HttpError: _http_error, ServiceError: _call_error, TransportError: _call_error},
    )
    console.router.redirect_slashes = False
    return console
