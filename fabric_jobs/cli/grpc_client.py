"""The command line's gRPC channel to a running service (`fabric-jobs jobs …`)."""

from __future__ import annotations

import grpc

from fabric_jobs.cli.grpc_tls import ClientTls


def client_channel(target: str, tls: ClientTls | None) -> grpc.aio.Channel:
    """A channel to the JobService and AdminService at `target` (host:port, unix:path, dns:///name:port),
    over TLS when `tls` is given (the --grpc-tls-* options), else plain text."""
    return grpc.aio.insecure_channel(target) if tls is None else tls.channel(target)
