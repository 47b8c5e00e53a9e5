"""The bridge's gRPC channel to JobService replicas: round-robin over every address the target resolves
to, and a retry on another replica for a call that fails UNAVAILABLE, or CANCELLED, which a replica that is
stopping answers to the calls that reached it but no handler yet (all three calls the bridge makes are
idempotent by key)."""

from __future__ import annotations

import grpc

from fabric_jobs.client import Tls, open_channel
from fabric_jobs.client.channel import ROUND_ROBIN
from fabric_jobs.v1 import job_service_pb2 as pb

_SERVICE = pb.DESCRIPTOR.services_by_name["JobService"].full_name
_RETRIED = ("CreateJobInstance", "GetJobInstance", "CancelJobInstance")

SERVICE_CONFIG = {
    **ROUND_ROBIN,
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


def job_service_channel(target: str, tls: Tls | None = None) -> grpc.aio.Channel:
    """A channel to `target` (host:port, unix:path, dns:///name:port or ipv4:host1:port1,host2:port2), over TLS when
    given `tls`, else plain text, retrying the bridge's calls as above."""
    return open_channel(target, tls=tls, options=[("grpc.enable_retries", 1)], service_config=SERVICE_CONFIG)
