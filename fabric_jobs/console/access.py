"""Who may use the console: anyone (loopback, no token configured) or a bearer of the admin token.

The page sends the token as `Authorization: Bearer …` on each API call. A browser's EventSource cannot set
headers, so the event stream takes instead a ticket: a random one-time value the page gets from an
authenticated POST just before it opens the stream, valid for TICKET_SECONDS. The token itself never
appears in a URL.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import time

from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from fabric_jobs.errors import ErrorCode
from fabric_jobs.rest_bridge.errors import error_response, http_error

TICKET_SECONDS = 30.0
MAX_TICKETS = 1000
EVENTS_PATH = "/console/api/events"
TICKETS_PATH = "/console/api/tickets"
JSON = "application/json"
API_PREFIX = "/console/api/"


class Tickets:
    """One-time tickets for the event stream, each valid TICKET_SECONDS; at most MAX_TICKETS outstanding."""

    def __init__(self) -> None:
        self._expiries: dict[str, float] = {}

    def issue(self) -> str:
        now = time.monotonic()
        self._expiries = {ticket: expiry for ticket, expiry in self._expiries.items() if expiry > now}
        if len(self._expiries) >= MAX_TICKETS:
            self._expiries.pop(next(iter(self._expiries)))
        ticket = secrets.token_urlsafe(24)
        self._expiries[ticket] = now + TICKET_SECONDS
        return ticket

    def use(self, ticket: str) -> bool:
        expiry = self._expiries.pop(ticket, None)
        return expiry is not None and expiry > time.monotonic()


class ConsoleAccess:
    """Plain ASGI middleware guarding /console/api/*; the page and its static files carry no data and are public."""

    def __init__(self, app: ASGIApp, token: str | None, tickets: Tickets) -> None:
        self.app = app
        self._token = token.encode() if token is not None else None
        self._tickets = tickets

    def _foreign_request(self, scope: Scope, headers: Headers) -> str | None:
        """Why a request that another web site may have made the browser send is refused, or None.

        Without a token the console trusts whoever reaches loopback, so a page of another site must not reach it
        through the operator's browser: by a name that resolves to 127.0.0.1 (DNS rebinding), or by a form or
        fetch that posts across origins (which the browser sends without asking when its type looks harmless).
        """
        host = headers.get("host", "")
        if self._token is None and not _is_loopback_host(host):
            return f"Host {host[:100]!r} is not a loopback address: open the console at 127.0.0.1 or localhost."
        if scope["method"] not in ("GET", "HEAD"):
            origin = headers.get("origin")
            if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
                return "Requests from another origin are refused."
            if scope["path"] != TICKETS_PATH and headers.get("content-type", "").split(";")[0].strip() != JSON:
                return "Changes must be sent as application/json."
        return None

    def _has_token(self, headers: Headers) -> bool:
        assert self._token is not None
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), self._token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._foreign_request(scope, headers)
        if refusal is not None:
            await error_response(http_error(ErrorCode.FORBIDDEN, refusal))(scope, receive, send)
            return
        if self._token is None or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        if self._has_token(headers):
            await self.app(scope, receive, send)
            return
        if scope["path"] == EVENTS_PATH and self._tickets.use(QueryParams(scope["query_string"]).get("ticket", "")):
            await self.app(scope, receive, send)
            return
        unauthorized = http_error(ErrorCode.AUTH_ERROR, "This console needs the admin token (Authorization: Bearer …).")
        unauthorized.headers["WWW-Authenticate"] = 'Bearer realm="fabric-jobs console"'
        await error_response(unauthorized)(scope, receive, send)


def _is_loopback_host(host: str) -> bool:
    """Whether a Host header names this machine by a loopback address or `localhost`."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
