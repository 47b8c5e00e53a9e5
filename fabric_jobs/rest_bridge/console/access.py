"""Who may use the console: anyone (loopback, no token configured) or a bearer of the admin token.

The page sends the token as `Authorization: Bearer …` on each API call. A browser's EventSource cannot set
headers, so the event stream takes instead a ticket: a random one-time value the page gets from an
authenticated POST just before it opens the stream, valid for TICKET_SECONDS. The token itself never
appears in a URL.
"""

from __future__ import annotations

import hmac
import secrets
import time

from starlette.datastructures import Headers, QueryParams
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

TICKET_SECONDS = 30.0
MAX_TICKETS = 1000
EVENTS_PATH = "/console/api/events"
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

    def _has_token(self, headers: Headers) -> bool:
        assert self._token is not None
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), self._token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._token is None or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        if self._has_token(Headers(scope=scope)):
            await self.app(scope, receive, send)
            return
        if scope["path"] == EVENTS_PATH and self._tickets.use(QueryParams(scope["query_string"]).get("ticket", "")):
            await self.app(scope, receive, send)
            return
        response = JSONResponse(
            {"error": "This console needs the admin token (Authorization: Bearer …)."},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="fabric-jobs console"'},
        )
        await response(scope, receive, send)
