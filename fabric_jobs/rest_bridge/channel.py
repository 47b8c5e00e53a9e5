"""The bridge's gRPC channel to JobService replicas: round-robin over every address the target resolves
to, and a retry on another replica for a call that fails UNAVAILABLE, or CANCELLED, which a replica that is
stopping answers to the calls that reached it but no handler yet (all three calls the bridge makes are
idempotent by key)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc

from fabric_jobs.v1 import job_service_pb2 as pb

_SERVICE = pb.DESCRIPTOR.services_by_name["JobService"].full_name
_RETRIED = ("CreateJobInstance", "GetJobInstance", "CancelJobInstance")

SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [
        {
            "name": [{"service": _SERVICE, "method": method} for method in _RETRIED],
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "0.05s",
                "maxBackoff": "0.5s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE", "CANCELLED"],
            },
        }
    ],
}


def job_service_channel(
    target: str, credentials: grpc.ChannelCredentials | None = None, options: Sequence[tuple[str, Any]] = ()
) -> grpc.aio.Channel:
    """A channel to `target`: host:port, unix:path, dns:///name:port or ipv4:host1:port1,host2:port2; with TLS
    when given `credentials`, else plain text."""
    all_options = [("grpc.service_config", json.dumps(SERVICE_CONFIG)), ("grpc.enable_retries", 1), *options]
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=all_options)
    return grpc.aio.secure_channel(target, credentials, options=all_options)
