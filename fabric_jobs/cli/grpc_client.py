"""The command line's gRPC channel to a running service (`fabric-jobs jobs …`)."""

from __future__ import annotations

import grpc


def client_channel(target: str) -> grpc.aio.Channel:
    """A channel to the JobService and AdminService at `target` (host:port, unix:path, dns:///name:port)."""
    return grpc.aio.insecure_channel(target)
