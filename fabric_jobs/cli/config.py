"""From parsed options to what each component is given: settings objects and collaborators, checked once."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from dataclasses import dataclass, field

import grpc

from fabric_jobs.cli.grpc_tls import grpc_client_tls, grpc_server_credentials, serve_bridge_tls
from fabric_jobs.cli.option_kit import ConfigError, flag_or_env
from fabric_jobs.cli.options import DEMO_JOBS, MIN_ADMIN_TOKEN_LENGTH
from fabric_jobs.client import Tls
from fabric_jobs.console import ConsoleSettings
from fabric_jobs.on_behalf_of.entra import (
    EntraApp,
    EntraConfigError,
    EntraSettings,
    read_client_certificate,
    read_client_secret,
)
from fabric_jobs.on_behalf_of.sealing import KeyFileError, Sealer, read_key_file
from fabric_jobs.on_behalf_of.tokens import EntraUserTokens
from fabric_jobs.registry import JobRegistry, load_registry
from fabric_jobs.rest_bridge.auth import Authenticator, AuthSettings
from fabric_jobs.rest_bridge.settings import BridgeSettings, HttpLimits
from fabric_jobs.server.backend import Backend, open_backend
from fabric_jobs.server.settings import ServiceSettings
from fabric_jobs.server.store import StoreError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceConfig:
    settings: ServiceSettings
    registry: JobRegistry
    host: str
    port: int
    run_handlers: bool
    """Whether this process runs handlers where workers could run them (`serve`), or leaves them to workers (a `grpc`
    replica); on SQLite, which has no workers, handlers run here either way."""
    credentials: grpc.ServerCredentials | None = None
    """TLS of the gRPC port; None: plain text."""
    jobs: str = ""
    """Where the registry came from (--jobs), for the log."""


@dataclass(frozen=True)
class BridgeConfig:
    settings: BridgeSettings
    authenticator: Authenticator | None
    """None in dev mode: any caller is accepted."""
    host: str
    port: int
    grpc_target: str | None
    """The JobService to call over gRPC; None for the one in this process."""
    in_process: bool
    """Reach the JobService of this process over its in-process channel rather than its gRPC port."""
    limits: HttpLimits = field(default_factory=HttpLimits)
    grpc_tls: Tls | None = None
    """TLS of the calls to the JobService over gRPC; None: plain text."""


@dataclass(frozen=True)
class ConsoleConfig:
    settings: ConsoleSettings
    host: str
    port: int


@dataclass(frozen=True)
class WorkerConfig:
    settings: ServiceSettings
    registry: JobRegistry
    jobs: str = ""
    """Where the registry came from (--jobs), for the log."""


@dataclass(frozen=True)
class MetricsConfig:
    host: str
    port: int


@dataclass(frozen=True)
class Config:
    dev: bool
    metrics: MetricsConfig | None = None
    """Where to serve /metrics on a port of its own; None for nowhere (the REST port has them anyway)."""
    service: ServiceConfig | None = None
    bridge: BridgeConfig | None = None
    console: ConsoleConfig | None = None
    """The operators' web console, beside the bridge on its own port."""
    worker: WorkerConfig | None = None
    migrate: str | None = None
    """The database URL to migrate (the `migrate` command)."""


def config_from_args(args: argparse.Namespace) -> Config:
    """Everything the command runs with; ConfigError says in one line what is wrong before anything starts."""
    dev = getattr(args, "dev", False)
    if dev:
        _require_loopback(args)
    if args.command == "migrate":
        return Config(dev=False, migrate=args.database)
    if args.command == "worker":
        if not _backend(args.database).separate_workers:
            raise ConfigError(
                f"a worker takes its jobs from PostgreSQL: set {flag_or_env('--database')} to postgresql://…"
            )
        _require_named_registry(args)
        return Config(
            dev=False,
            metrics=_metrics(args),
            worker=WorkerConfig(_service_settings(args), registry_from_args(args), jobs_spec(args)),
        )
    if args.command in ("serve", "grpc") and _backend(args.database).separate_workers:
        _require_named_registry(args)
    service = _service(args) if args.command in ("serve", "grpc") else None
    serves_http = args.command in ("serve", "rest")
    console = _console(args) if serves_http and args.admin_port is not None else None
    bridge = _bridge(args) if serves_http else None
    return Config(dev=args.dev, metrics=_metrics(args), service=service, bridge=bridge, console=console)


def _metrics(args: argparse.Namespace) -> MetricsConfig | None:
    port = getattr(args, "metrics_port", None)
    return None if port is None else MetricsConfig(args.metrics_host, port)


def _backend(database: str) -> Backend:
    try:
        return open_backend(database)
    except StoreError as exc:
        raise ConfigError(f"--database {database}: {exc}") from exc


def _require_loopback(args: argparse.Namespace) -> None:
    for flag in ("rest_host", "grpc_host", "admin_host", "metrics_host"):
        host = getattr(args, flag, None)
        if host is not None and not _is_loopback(host):
            option = "--" + flag.replace("_", "-")
            raise ConfigError(f"--dev refuses {option} {host}: dev mode binds to loopback only (127.0.0.1 or ::1)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _require_named_registry(args: argparse.Namespace) -> None:
    """On PostgreSQL, replicas validate Creates against the registry whose handlers workers run: the demo by default
    would accept its own job types and refuse the workload's."""
    if args.jobs is None:
        raise ConfigError(
            f"on PostgreSQL every grpc, worker and serve process needs the workload's job registry: set "
            f"{flag_or_env('--jobs')} package.module:attribute, the same in each (--jobs {DEMO_JOBS} for the demo)"
        )


def registry_from_args(args: argparse.Namespace) -> JobRegistry:
    """The registry of --jobs, imported with --app-dir (the current directory by default) first on sys.path, as
    uvicorn and celery import an app; the demo when --jobs is not given."""
    app_dir = os.path.abspath(args.app_dir)
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    hint = f"is the package installed, or is it in {app_dir}? (--app-dir names another folder)"
    try:
        return load_registry(jobs_spec(args), not_found_hint=hint)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def jobs_spec(args: argparse.Namespace) -> str:
    return str(args.jobs or DEMO_JOBS)


def log_registry(spec: str, registry: JobRegistry) -> None:
    """The one line that says which job types a process serves, so that replicas and workers can be compared."""
    names = ", ".join(f"{job.item_type}/{job.job_type}" for job in registry.job_types()) or "none"
    logger.info("job registry %s: %d job type(s): %s", spec, len(registry.job_types()), names)


def _service_settings(args: argparse.Namespace) -> ServiceSettings:
    defaults = ServiceSettings()
    return ServiceSettings(
        user_tokens=user_tokens_from_args(args),
        database=args.database,
        cancel_wait=getattr(args, "cancel_wait", defaults.cancel_wait),
        cancel_grace=args.cancel_grace,
        shutdown_grace=args.shutdown_grace,
        lease_seconds=args.lease_seconds,
        max_threads=args.max_threads,
        worker_concurrency=getattr(args, "concurrency", defaults.worker_concurrency),
        retention_seconds=getattr(args, "retention", defaults.retention_seconds),
    )


def _service(args: argparse.Namespace) -> ServiceConfig:
    credentials = grpc_server_credentials(args)
    if credentials is None and not args.grpc_insecure and not _is_loopback(args.grpc_host):
        raise ConfigError(
            f"--grpc-host {args.grpc_host} is not loopback: serve TLS with --grpc-tls-cert and --grpc-tls-key, "
            f"or allow plain text with {flag_or_env('--grpc-insecure')}"
        )
    return ServiceConfig(
        settings=_service_settings(args),
        registry=registry_from_args(args),
        host=args.grpc_host,
        port=args.grpc_port,
        run_handlers=args.command == "serve",
        credentials=credentials,
        jobs=jobs_spec(args),
    )


def _bridge(args: argparse.Namespace) -> BridgeConfig:
    settings = BridgeSettings(
        base_path=args.rest_base_path,
        request_timeout_seconds=args.request_timeout,
        max_body_bytes=args.max_body_bytes,
    )
    return BridgeConfig(
        settings=settings,
        authenticator=None if args.dev else _authenticator(args),
        host=args.rest_host,
        port=args.rest_port,
        grpc_target=getattr(args, "grpc_target", None),
        in_process=getattr(args, "bridge_channel", None) == "in-process",
        limits=HttpLimits(
            header_timeout_seconds=args.http_header_timeout,
            body_timeout_seconds=args.http_body_timeout,
            keepalive_timeout_seconds=args.http_keepalive_timeout,
            max_connections=args.http_max_connections,
            max_header_bytes=args.http_max_header_bytes,
        ),
        grpc_tls=serve_bridge_tls(args) if args.command == "serve" else grpc_client_tls(args),
    )


def _console(args: argparse.Namespace) -> ConsoleConfig:
    token = args.admin_token or None
    if token is None and not _is_loopback(args.admin_host):
        raise ConfigError(
            f"--admin-host {args.admin_host} is not loopback: the web console there needs a token, set "
            f"{flag_or_env('--admin-token')}"
        )
    if token is not None and len(token) < MIN_ADMIN_TOKEN_LENGTH:
        raise ConfigError(f"{flag_or_env('--admin-token')} must be at least {MIN_ADMIN_TOKEN_LENGTH} characters")
    settings = ConsoleSettings(token=token, request_timeout_seconds=args.request_timeout)
    return ConsoleConfig(settings=settings, host=args.admin_host, port=args.admin_port)


def auth_settings_from_args(args: argparse.Namespace) -> AuthSettings:
    missing = [
        f"the {what}: set {flag_or_env(flag)}"
        for flag, what in (
            ("--auth-audience", "workload's audience"),
            ("--auth-publisher-tenant-id", "publisher tenant id"),
        )
        if not getattr(args, flag.removeprefix("--").replace("-", "_"))
    ]
    if missing:
        raise ConfigError(
            f"authentication needs {'; and '.join(missing)} (or run with --dev, no authentication, on loopback; "
            "`fabric-jobs dev-tokens` makes local tokens to try it)"
        )
    if not args.auth_app_ids:
        raise ConfigError(f"{flag_or_env('--auth-app-ids')} must name at least one app id")
    return AuthSettings(
        audiences=args.auth_audience,
        publisher_tenant_id=args.auth_publisher_tenant_id,
        app_ids=frozenset(args.auth_app_ids),
        jwks_file=args.auth_jwks_file,
        jwks_url=args.auth_jwks_url,
    )


def _authenticator(args: argparse.Namespace) -> Authenticator:
    try:
        return Authenticator(auth_settings_from_args(args))
    except ValueError as exc:
        raise ConfigError(f"authentication: {exc}") from exc


ENTRA_FLAGS = (
    "--entra-client-id",
    "--entra-client-secret-file",
    "--entra-client-certificate-file",
    "--token-key-file",
    "--token-old-key-file",
)


def user_tokens_from_args(args: argparse.Namespace) -> EntraUserTokens | None:
    """Tokens on behalf of jobs' users, when the Entra options are set; None when none is. ConfigError otherwise."""
    given = [flag for flag in ENTRA_FLAGS if getattr(args, flag.removeprefix("--").replace("-", "_"), None)]
    if not given:
        return None
    if not args.entra_client_id:
        raise ConfigError(f"{given[0]} needs the workload's app id: set {flag_or_env('--entra-client-id')}")
    secret_file, certificate_file = args.entra_client_secret_file, args.entra_client_certificate_file
    if (secret_file is None) == (certificate_file is None):
        raise ConfigError(
            f"--entra-client-id needs exactly one app credential: {flag_or_env('--entra-client-secret-file')} or "
            f"{flag_or_env('--entra-client-certificate-file')}"
        )
    if args.token_key_file is None:
        raise ConfigError(
            f"--entra-client-id needs the key that encrypts the credentials it keeps: set "
            f"{flag_or_env('--token-key-file')}"
        )
    if args.entra_ca_file is not None and not args.entra_ca_file.is_file():
        raise ConfigError(f"{flag_or_env('--entra-ca-file')}: no file {args.entra_ca_file}")
    try:
        sealer = Sealer(
            read_key_file(args.token_key_file),
            None if args.token_old_key_file is None else read_key_file(args.token_old_key_file),
        )
        settings = EntraSettings(
            client_id=args.entra_client_id,
            client_secret=None if secret_file is None else read_client_secret(secret_file),
            client_certificate=None if certificate_file is None else read_client_certificate(certificate_file),
            authority=args.entra_authority,
            ca_file=args.entra_ca_file,
        )
    except (KeyFileError, EntraConfigError) as exc:
        raise ConfigError(str(exc)) from None
    return EntraUserTokens(EntraApp(settings), sealer)
