"""The one way fabric-jobs opens a gRPC channel: to a target named as gRPC names it, round robin across every
address the name resolves to, plain text or TLS (mutual TLS with a client certificate)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

ChannelOptions = Sequence[tuple[str, Any]]

ROUND_ROBIN: Mapping[str, Any] = {"loadBalancingConfig": [{"round_robin": {}}]}
"""The service config of a channel that spreads calls over every replica the target resolves to."""

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Tls:
    """How a client checks the JobService's certificate and, for mutual TLS, which certificate it presents: the
    command line's --grpc-tls-ca, --grpc-tls-cert, --grpc-tls-key and --grpc-tls-server-name."""

    credentials: grpc.ChannelCredentials
    server_name: str | None = None
    """The name the service's certificate must be valid for (default: the host of the target)."""

    @classmethod
    def from_pem(
        cls,
        *,
        ca: bytes | None = None,
        cert: bytes | None = None,
        key: bytes | None = None,
        server_name: str | None = None,
    ) -> Tls:
        """TLS from PEM bytes: the CA(s) to check the service against (None: the system's CAs), and a client
        certificate chain with its private key (both or neither)."""
        if (cert is None) != (key is None):
            raise ValueError("a client certificate and its private key go together: give both cert and key")
        credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
        return cls(credentials, server_name or None)

    @classmethod
    def from_files(
        cls,
        *,
        ca: PathLike | None = None,
        cert: PathLike | None = None,
        key: PathLike | None = None,
        server_name: str | None = None,
    ) -> Tls:
        """TLS from PEM files, as the command line's --grpc-tls-* options name them."""
        return cls.from_pem(ca=_read(ca), cert=_read(cert), key=_read(key), server_name=server_name)

    def channel_options(self) -> list[tuple[str, Any]]:
        return [] if self.server_name is None else [("grpc.ssl_target_name_override", self.server_name)]


def _read(path: PathLike | None) -> bytes | None:
    if path is None:
        return None
    with open(path, "rb") as file:
        return file.read()


def open_channel(
    target: str,
    *,
    tls: Tls | None = None,
    options: ChannelOptions = (),
    service_config: Mapping[str, Any] = ROUND_ROBIN,
) -> grpc.aio.Channel:
    """A grpc.aio channel to `target`: host:port, dns:///name:port, ipv4:host1:port1,host2:port2 or unix:path;
    over TLS when given `tls`, else plain text. Round robin across the addresses unless `service_config` says
    otherwise. Needs a running event loop."""
    all_options = [("grpc.service_config", json.dumps(service_config)), *options]
    if tls is None:
        return grpc.aio.insecure_channel(target, options=all_options)
    return grpc.aio.secure_channel(target, tls.credentials, options=[*all_options, *tls.channel_options()])
