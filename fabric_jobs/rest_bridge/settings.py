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
