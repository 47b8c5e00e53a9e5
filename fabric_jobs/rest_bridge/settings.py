"""What the REST bridge is told at start; the command line fills it, once, at the edge."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BridgeSettings:
    base_path: str = ""
    """Prefix of every route: empty, or a leading slash and no trailing one (/workload)."""
    request_timeout_seconds: float = 30.0
    """The deadline of each request's gRPC call."""
    max_body_bytes: int = 131072
    """A larger request body is answered 413."""


@dataclass(frozen=True)
class HttpLimits:
    """What one HTTP connection may hold of the server: a client slower or larger than this is cut off."""

    header_timeout_seconds: float = 10.0
    """From a connection's opening, or a request's first byte, to the end of its headers."""
    body_timeout_seconds: float = 30.0
    """From the end of a request's headers to the end of its body."""
    keepalive_timeout_seconds: float = 5.0
    """How long an idle connection is kept open after a response."""
    max_connections: int = 1000
    """Connections open at once; a request on one beyond them is answered 503."""
    max_header_bytes: int = 65536
    """The request line and headers of one request; more is answered 431."""
