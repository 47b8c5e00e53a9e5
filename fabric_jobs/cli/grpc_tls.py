"""TLS on the gRPC port: the options of a server (`serve`, `grpc`) and of a client (the bridge, client
commands), and the credentials made from them, checked once with one line per mistake.

A client command adds its options with add_grpc_client_tls_options and opens its channel with
fabric_jobs.client.open_channel(target, tls=grpc_client_tls(args)) (None: plain text).
"""

from __future__ import annotations

import argparse
import pathlib
from collections.abc import Sequence
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fabric_jobs.cli.option_kit import ConfigError, flag_or_env, option, switch
from fabric_jobs.client import Tls

ChannelOptions = Sequence[tuple[str, Any]]


def add_grpc_server_tls_options(group: Any) -> None:
    option(
        group,
        "--grpc-tls-cert",
        "PEM certificate (chain) the gRPC port serves TLS with; with --grpc-tls-key (default: plain text, "
        "loopback only unless --grpc-insecure)",
        converter=pathlib.Path,
    )
    option(group, "--grpc-tls-key", "PEM private key of --grpc-tls-cert", converter=pathlib.Path)
    option(
        group,
        "--grpc-tls-client-ca",
        "PEM certificate(s) of the CA(s) whose client certificates are accepted: mutual TLS, a client without "
        "such a certificate is refused (default: any client)",
        converter=pathlib.Path,
    )
    switch(group, "--grpc-insecure", "serve plain-text gRPC on a --grpc-host that is not loopback (refused without it)")


def add_grpc_client_tls_options(group: Any, *, client_certificate: bool = True) -> None:
    """The options of a gRPC client; without `client_certificate` (in `serve`, whose bridge uses TLS when the
    gRPC port does and presents the server's own certificate) only the CA and the server name."""
    option(
        group,
        "--grpc-tls-ca",
        "PEM certificate(s) of the CA(s) the JobService's certificate is checked against; connects with TLS "
        "(default: plain text; with --grpc-tls-cert alone, the system's CAs)"
        if client_certificate
        else "PEM certificate(s) of the CA(s) the bridge checks the JobService's certificate against with "
        "--bridge-channel grpc and --grpc-tls-cert (default: the system's CAs)",
        converter=pathlib.Path,
    )
    if client_certificate:
        option(
            group,
            "--grpc-tls-cert",
            "PEM client certificate presented to a JobService that requires one (mutual TLS); with --grpc-tls-key",
            converter=pathlib.Path,
        )
        option(group, "--grpc-tls-key", "PEM private key of the client --grpc-tls-cert", converter=pathlib.Path)
    option(
        group,
        "--grpc-tls-server-name",
        "the name the JobService's certificate must be valid for (default: the host of the target)",
    )


def _read(path: pathlib.Path, flag: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{flag_or_env(flag)} {path}: cannot read it: {exc.strerror or exc}") from exc


def _certificates(path: pathlib.Path, flag: str) -> bytes:
    data = _read(path, flag)
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigError(f"{flag_or_env(flag)} {path}: not a PEM certificate") from None
    return data


def _key_pair(cert_path: pathlib.Path | None, key_path: pathlib.Path | None) -> tuple[bytes, bytes] | None:
    if cert_path is None and key_path is None:
        return None
    if cert_path is None or key_path is None:
        missing = "--grpc-tls-key" if cert_path is not None else "--grpc-tls-cert"
        raise ConfigError(f"--grpc-tls-cert and --grpc-tls-key go together: set {flag_or_env(missing)}")
    chain = _certificates(cert_path, "--grpc-tls-cert")
    key = _read(key_path, "--grpc-tls-key")
    try:
        private_key = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{flag_or_env('--grpc-tls-key')} {key_path}: not an unencrypted PEM private key") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    certificate_key = x509.load_pem_x509_certificates(chain)[0].public_key()
    if certificate_key.public_bytes(serialization.Encoding.DER, public) != private_key.public_key().public_bytes(
        serialization.Encoding.DER, public
    ):
        raise ConfigError(f"--grpc-tls-key {key_path} is not the private key of --grpc-tls-cert {cert_path}")
    return key, chain


def grpc_server_credentials(args: argparse.Namespace) -> grpc.ServerCredentials | None:
    """TLS credentials of the gRPC port, or None for plain text."""
    pair = _key_pair(args.grpc_tls_cert, args.grpc_tls_key)
    if pair is None:
        if args.grpc_tls_client_ca is not None:
            raise ConfigError(
                f"{flag_or_env('--grpc-tls-client-ca')} needs TLS: set --grpc-tls-cert and --grpc-tls-key"
            )
        return None
    if args.grpc_tls_client_ca is None:
        return grpc.ssl_server_credentials([pair])
    client_ca = _certificates(args.grpc_tls_client_ca, "--grpc-tls-client-ca")
    return grpc.ssl_server_credentials([pair], root_certificates=client_ca, require_client_auth=True)


def grpc_client_tls(args: argparse.Namespace) -> Tls | None:
    """A client's TLS from its options, or None for plain text (no --grpc-tls-* option given)."""
    ca_path = args.grpc_tls_ca
    pair = _key_pair(args.grpc_tls_cert, args.grpc_tls_key)
    if ca_path is None and pair is None:
        if args.grpc_tls_server_name:
            raise ConfigError(f"{flag_or_env('--grpc-tls-server-name')} needs TLS: set --grpc-tls-ca")
        return None
    ca = None if ca_path is None else _certificates(ca_path, "--grpc-tls-ca")
    key, chain = pair if pair is not None else (None, None)
    credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=chain)
    return Tls(credentials, args.grpc_tls_server_name or None)


def serve_bridge_tls(args: argparse.Namespace) -> Tls | None:
    """In `serve`, the TLS of the bridge's calls over the gRPC port: TLS when the port serves it, presenting
    the server's own certificate when the port requires client certificates."""
    if args.grpc_tls_cert is None:
        if args.grpc_tls_ca is not None or args.grpc_tls_server_name:
            raise ConfigError(
                "--grpc-tls-ca and --grpc-tls-server-name need TLS: set --grpc-tls-cert and --grpc-tls-key"
            )
        return None
    ca = None if args.grpc_tls_ca is None else _certificates(args.grpc_tls_ca, "--grpc-tls-ca")
    pair = _key_pair(args.grpc_tls_cert, args.grpc_tls_key) if args.grpc_tls_client_ca is not None else None
    key, chain = pair if pair is not None else (None, None)
    credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=chain)
    return Tls(credentials, args.grpc_tls_server_name or None)
