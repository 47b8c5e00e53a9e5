"""The bridge's settings, and the command-line options (with FABRIC_JOBS_* environment defaults) that fill them."""

from __future__ import annotations

import argparse
import os
import pathlib
import re
from dataclasses import dataclass
from typing import TypeVar

from fabric_jobs.rest_bridge.auth import FABRIC_APP_IDS, AuthSettings

ENV_PREFIX = "FABRIC_JOBS_"
_BASE_PATH = re.compile(r"(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*")

_Number = TypeVar("_Number", int, float)


class ConfigError(Exception):
    """The configuration is incomplete or wrong; the message is one line saying what to set."""


@dataclass(frozen=True)
class BridgeSettings:
    grpc_target: str = "127.0.0.1:50051"
    base_path: str = ""
    request_timeout_seconds: float = 30.0
    max_body_bytes: int = 131072
    auth: AuthSettings | None = None


def normalized_base_path(base_path: str) -> str:
    """The base path as routes want it: empty, or a leading slash and no trailing one."""
    stripped = base_path.strip().strip("/")
    return f"/{stripped}" if stripped else ""


def _add(group: argparse._ArgumentGroup, flag: str, env: str, help_text: str, default: str | None = None) -> None:
    group.add_argument(
        flag,
        dest=flag.removeprefix("--").replace("-", "_"),
        default=os.environ.get(ENV_PREFIX + env, default),
        help=f"{help_text} [env {ENV_PREFIX}{env}]",
    )


def add_bridge_arguments(parser: argparse.ArgumentParser) -> None:
    """The REST bridge's options; each defaults to its FABRIC_JOBS_* environment variable."""
    defaults = BridgeSettings()
    group = parser.add_argument_group("REST bridge")
    _add(
        group,
        "--rest-base-path",
        "REST_BASE_PATH",
        "path prefix under which the Jobs API, /healthz, /readyz and /openapi.json are served, e.g. /workload "
        "(default: none)",
        defaults.base_path,
    )
    _add(
        group,
        "--grpc-target",
        "GRPC_TARGET",
        "address of the JobService the bridge calls, host:port or unix:path (default: %(default)s)",
        defaults.grpc_target,
    )
    _add(
        group,
        "--request-timeout",
        "REQUEST_TIMEOUT",
        "seconds a REST request may take: the deadline of its gRPC call (default: %(default)s)",
        str(defaults.request_timeout_seconds),
    )
    _add(
        group,
        "--max-body-bytes",
        "MAX_BODY_BYTES",
        "largest accepted request body in bytes; a larger one is answered 413 (default: %(default)s)",
        str(defaults.max_body_bytes),
    )
    _add(
        group,
        "--auth-audience",
        "AUTH_AUDIENCE",
        "comma-separated audiences accepted in both tokens: the workload's Entra app id URI and/or app id "
        "(required unless in dev mode)",
    )
    _add(
        group,
        "--auth-publisher-tenant-id",
        "AUTH_PUBLISHER_TENANT_ID",
        "tenant id (GUID) of the workload's publisher; Fabric's app token must be issued in it "
        "(required unless in dev mode)",
    )
    _add(
        group,
        "--auth-app-ids",
        "AUTH_APP_IDS",
        "comma-separated app ids accepted as the calling app (default: Fabric's two app ids)",
        ",".join(sorted(FABRIC_APP_IDS)),
    )
    _add(
        group,
        "--auth-jwks-file",
        "AUTH_JWKS_FILE",
        "local JWKS file with the token signing keys, for tests and air-gapped runs (used instead of the URL)",
    )
    _add(
        group,
        "--auth-jwks-url",
        "AUTH_JWKS_URL",
        "URL of the JWKS with the token signing keys (default: %(default)s)",
        AuthSettings.jwks_url,
    )


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def _number(kind: type[_Number], value: str, flag: str, env: str) -> _Number:
    try:
        number = kind(value)
    except ValueError:
        raise ConfigError(f"{flag} ({ENV_PREFIX}{env}) must be a positive number, not {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{flag} ({ENV_PREFIX}{env}) must be a positive number, not {value!r}")
    return number


def _auth_settings(args: argparse.Namespace) -> AuthSettings:
    audiences = _csv(args.auth_audience)
    if not audiences:
        raise ConfigError(
            "authentication needs the workload's audience: set --auth-audience or FABRIC_JOBS_AUTH_AUDIENCE"
        )
    publisher = (args.auth_publisher_tenant_id or "").strip()
    if not publisher:
        raise ConfigError(
            "authentication needs the publisher tenant id: "
            "set --auth-publisher-tenant-id or FABRIC_JOBS_AUTH_PUBLISHER_TENANT_ID"
        )
    app_ids = _csv(args.auth_app_ids)
    if not app_ids:
        raise ConfigError("--auth-app-ids (FABRIC_JOBS_AUTH_APP_IDS) must name at least one app id")
    jwks_file = pathlib.Path(args.auth_jwks_file) if args.auth_jwks_file else None
    return AuthSettings(
        audiences=audiences,
        publisher_tenant_id=publisher,
        app_ids=frozenset(app_ids),
        jwks_file=jwks_file,
        jwks_url=args.auth_jwks_url or AuthSettings.jwks_url,
    )


def _base_path(value: str) -> str:
    base_path = normalized_base_path(value)
    if not _BASE_PATH.fullmatch(base_path):
        raise ConfigError(
            f"--rest-base-path (FABRIC_JOBS_REST_BASE_PATH) must be a URL path such as /workload, not {value!r}"
        )
    return base_path


def _grpc_target(value: str | None) -> str:
    if value is None:
        return BridgeSettings.grpc_target
    if not value.strip():
        raise ConfigError("--grpc-target (FABRIC_JOBS_GRPC_TARGET) must be host:port or unix:path, not empty")
    return value


def bridge_settings_from_args(args: argparse.Namespace, *, dev: bool) -> BridgeSettings:
    """Settings from parsed options. Without dev, authentication is on and must be configured."""
    return BridgeSettings(
        grpc_target=_grpc_target(args.grpc_target),
        base_path=_base_path(args.rest_base_path or ""),
        request_timeout_seconds=_number(float, args.request_timeout, "--request-timeout", "REQUEST_TIMEOUT"),
        max_body_bytes=_number(int, args.max_body_bytes, "--max-body-bytes", "MAX_BODY_BYTES"),
        auth=None if dev else _auth_settings(args),
    )
