"""The command line: one parser, one option helper; every option may also come from FABRIC_JOBS_<NAME>."""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import re
from collections.abc import Callable
from typing import Any, NoReturn

from fabric_jobs import __version__
from fabric_jobs.rest_bridge.auth import FABRIC_APP_IDS, AuthSettings
from fabric_jobs.rest_bridge.settings import BridgeSettings, HttpLimits
from fabric_jobs.server.backend import database_url_problem
from fabric_jobs.server.settings import DEFAULT_DATABASE, ServiceSettings

ENV_PREFIX = "FABRIC_JOBS_"
DEFAULT_GRPC_TARGET = "127.0.0.1:50051"
_URL_PATH = re.compile(r"(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*")

Converter = Callable[[str], Any]


class ConfigError(Exception):
    """Bad configuration: the message is the one line the user sees."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def env_name(flag: str) -> str:
    """The environment variable of an option: --cancel-wait is FABRIC_JOBS_CANCEL_WAIT."""
    return ENV_PREFIX + flag.removeprefix("--").replace("-", "_").upper()


def flag_or_env(flag: str) -> str:
    return f"{flag} or {env_name(flag)}"


MAX_SECONDS = 1_000_000
MIN_ADMIN_TOKEN_LENGTH = 16


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {value!r}") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {value!r}")
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {value!r}")
    if number > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SECONDS} seconds, not {value!r}")
    return number


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value!r}")
    return number


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number, not {value!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 0 to 65535 (0 picks a free port), not {value!r}")
    return number


def _choice(*choices: str) -> Converter:
    def convert(value: str) -> str:
        if value not in choices:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    return convert


def _url_path(value: str) -> str:
    """Empty, or a leading slash and no trailing one: the form routes are built from."""
    stripped = value.strip().strip("/")
    path = f"/{stripped}" if stripped else ""
    if not _URL_PATH.fullmatch(path):
        raise argparse.ArgumentTypeError(f"must be a URL path such as /workload, not {value!r}")
    return path


def _grpc_target(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError(f"must be host:port or unix:path, not {value!r}")
    return value.strip()


def _database_url(value: str) -> str:
    url = value.strip()
    problem = database_url_problem(url)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return url


def _comma_separated(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _option(
    group: Any,
    flag: str,
    help_text: str,
    default: str | None = None,
    converter: Converter | None = None,
) -> None:
    """Add `flag`, defaulting to its environment variable and then to `default`; a bad value names where it is set."""
    name = env_name(flag)
    from_env = os.environ.get(name)
    kwargs: dict[str, Any] = {
        "default": default if from_env is None else from_env,
        "help": f"{help_text} [env {name}]",
    }
    if converter is not None:
        kwargs["type"] = _naming_env(converter, name, from_env)
    group.add_argument(flag, **kwargs)


def _naming_env(converter: Converter, name: str, from_env: str | None) -> Converter:
    def convert(value: str) -> Any:
        try:
            return converter(value)
        except argparse.ArgumentTypeError as exc:
            if from_env is None or value != from_env:
                raise
            raise argparse.ArgumentTypeError(f"{exc} [env {name}]") from None

    return convert


def _add_common(parser: argparse.ArgumentParser, *, dev: bool = True) -> None:
    if dev:
        _add_dev(parser)
    _option(
        parser,
        "--log-level",
        "DEBUG, INFO, WARNING or ERROR (default: %(default)s)",
        "INFO",
        lambda value: _choice("DEBUG", "INFO", "WARNING", "ERROR")(value.upper()),
    )
    _option(
        parser,
        "--log-format",
        "text (readable, the default) or json (one JSON object per line, for log shippers) (default: %(default)s)",
        "text",
        lambda value: _choice("text", "json")(value.lower()),
    )


def _add_metrics(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("metrics (Prometheus)")
    _option(
        group,
        "--metrics-port",
        "serve GET /metrics (Prometheus text format) on this port, for a process without a REST port; 0 picks a "
        "free one (default: none; `serve` also has them at /metrics on its REST port)",
        None,
        _port,
    )
    _option(
        group,
        "--metrics-host",
        "address the --metrics-port listens on (default: %(default)s)",
        "127.0.0.1",
    )


def _add_dev(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dev",
        action="store_true",
        default=os.environ.get(env_name("--dev")) in ("1", "true", "yes"),
        help=f"development mode: no authentication, loopback only; says so loudly at start [env {env_name('--dev')}=1]",
    )


def _add_database(group: Any) -> None:
    _option(
        group,
        "--database",
        "where job instances are kept: sqlite:///path/to/file.db (embedded: one process runs the handlers) or "
        "postgresql://user@host:port/dbname (scale-out: any number of grpc, rest and worker processes) "
        "(default: %(default)s)",
        DEFAULT_DATABASE,
        _database_url,
    )


DEMO_JOBS = "fabric_jobs.demo:registry"


def _add_jobs(group: Any) -> None:
    _option(
        group,
        "--jobs",
        "the job registry to load, package.module:attribute, imported from --app-dir first (default: the demo, "
        f"{DEMO_JOBS}; on PostgreSQL a grpc, worker or serve process must name it, the same in every process)",
    )
    _option(
        group,
        "--app-dir",
        "folder put first on the import path for --jobs (default: the current directory)",
        ".",
    )


def _add_service(parser: argparse.ArgumentParser, *, serves_grpc: bool = True, with_concurrency: bool = True) -> None:
    defaults = ServiceSettings()
    group = parser.add_argument_group("JobService (gRPC)" if serves_grpc else "worker")
    if serves_grpc:
        _option(group, "--grpc-host", "address the gRPC JobService listens on (default: %(default)s)", "127.0.0.1")
        _option(group, "--grpc-port", "its port; 0 picks a free one (default: %(default)s)", "50051", _port)
    _add_database(group)
    _add_jobs(group)
    seconds = (
        (
            "--cancel-wait",
            defaults.cancel_wait,
            "seconds a Cancel of a running job waits for its handler to stop before answering",
            serves_grpc,
        ),
        (
            "--cancel-grace",
            defaults.cancel_grace,
            "seconds a handler may ignore a cancel before it is stopped by force and ends Cancelled",
            True,
        ),
        (
            "--shutdown-grace",
            defaults.shutdown_grace,
            "on SIGTERM/SIGINT running handlers are told at once (their token, reason SHUTDOWN) and get this many "
            "seconds to stop; the process exits as soon as none runs, and those still running are stopped and "
            "recorded Failed, JobExecutorLost (retriable)",
            True,
        ),
        (
            "--lease-seconds",
            defaults.lease_seconds,
            "a running job whose process stopped renewing its lease (on PostgreSQL: whose worker stopped its "
            "heartbeat) for this long ends Failed, retriable",
            True,
        ),
    )
    for flag, default, help_text, applies in seconds:
        if applies:
            _option(group, flag, f"{help_text} (default: %(default)s)", str(default), _positive_float)
    _option(
        group,
        "--max-threads",
        "threads for plain (non-async) handlers (default: %(default)s)",
        str(defaults.max_threads),
        _positive_int,
    )
    if with_concurrency:
        _option(
            group,
            "--concurrency",
            "on PostgreSQL, how many jobs this process runs at once (default: %(default)s)",
            str(defaults.worker_concurrency),
            _positive_int,
        )


def _add_rest(parser: argparse.ArgumentParser, *, with_target: bool) -> None:
    defaults = BridgeSettings()
    group = parser.add_argument_group("REST bridge (HTTP)")
    _option(group, "--rest-host", "address the REST bridge listens on (default: %(default)s)", "127.0.0.1")
    _option(group, "--rest-port", "its port; 0 picks a free one (default: %(default)s)", "8080", _port)
    if with_target:
        _option(
            group,
            "--grpc-target",
            "address of the JobService the bridge calls: host:port, unix:path, or several replicas as "
            "dns:///name:port or ipv4:host1:port1,host2:port2, balanced round-robin; calls that fail UNAVAILABLE "
            "or CANCELLED (a replica shutting down) are retried on another replica (default: %(default)s)",
            DEFAULT_GRPC_TARGET,
            _grpc_target,
        )
    _option(
        group,
        "--rest-base-path",
        "path prefix under which the Jobs API, /healthz, /readyz and /openapi.json are served, e.g. /workload "
        "(default: none)",
        defaults.base_path,
        _url_path,
    )
    _option(
        group,
        "--request-timeout",
        "seconds a REST request may take: the deadline of its gRPC call (default: %(default)s)",
        str(defaults.request_timeout_seconds),
        _positive_float,
    )
    _option(
        group,
        "--max-body-bytes",
        "largest accepted request body in bytes; a larger one is answered 413 (default: %(default)s)",
        str(defaults.max_body_bytes),
        _positive_int,
    )
    _add_http_limits(group)
    _add_auth(parser)
    _add_console(parser)


def _add_console(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("web console for operators (admin port; off unless --admin-port is set)")
    _option(group, "--admin-host", "address the web console listens on (default: %(default)s)", "127.0.0.1")
    _option(
        group,
        "--admin-port",
        "serve the web console at http://ADMIN-HOST:ADMIN-PORT/console; 0 picks a free port (default: off)",
        converter=_port,
    )
    _option(
        group,
        "--admin-token",
        f"bearer token the console asks for; required when --admin-host is not loopback; at least "
        f"{MIN_ADMIN_TOKEN_LENGTH} characters (prefer the environment variable to the command line)",
        converter=str.strip,
    )


def _add_http_limits(group: Any) -> None:
    limits = HttpLimits()
    seconds = (
        (
            "--http-header-timeout",
            limits.header_timeout_seconds,
            "seconds a client has to send a request's line and headers, from the connection's opening or the "
            "request's first byte; then 408 and the connection is closed",
        ),
        (
            "--http-body-timeout",
            limits.body_timeout_seconds,
            "seconds a client has to send a request's body once its headers are in; then 408 and the connection "
            "is closed",
        ),
        (
            "--http-keepalive-timeout",
            limits.keepalive_timeout_seconds,
            "seconds an idle connection is kept open after a response",
        ),
    )
    for flag, default, help_text in seconds:
        _option(group, flag, f"{help_text} (default: %(default)s)", str(default), _positive_float)
    _option(
        group,
        "--http-max-connections",
        "HTTP connections open at once; a request on one more is answered 503 and its connection closed "
        "(default: %(default)s)",
        str(limits.max_connections),
        _positive_int,
    )
    _option(
        group,
        "--http-max-header-bytes",
        "largest request line and headers of a request in bytes; larger is answered 431 (default: %(default)s)",
        str(limits.max_header_bytes),
        _positive_int,
    )


def _add_auth(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("authentication of Fabric's calls (all but --dev)")
    _option(
        group,
        "--auth-audience",
        "comma-separated audiences accepted in both tokens: the workload's Entra app id URI and/or app id "
        "(required unless in dev mode)",
        converter=_comma_separated,
    )
    _option(
        group,
        "--auth-publisher-tenant-id",
        "tenant id (GUID) of the workload's publisher; Fabric's app token must be issued in it "
        "(required unless in dev mode)",
        converter=str.strip,
    )
    _option(
        group,
        "--auth-app-ids",
        "comma-separated app ids accepted as the calling app (default: Fabric's two app ids)",
        ",".join(sorted(FABRIC_APP_IDS)),
        _comma_separated,
    )
    _option(
        group,
        "--auth-jwks-file",
        "local JWKS file with the token signing keys, for tests and air-gapped runs (used instead of the URL)",
        converter=pathlib.Path,
    )
    _option(
        group,
        "--auth-jwks-url",
        "URL of the JWKS with the token signing keys (default: %(default)s)",
        AuthSettings.jwks_url,
    )


def build_parser() -> argparse.ArgumentParser:
    from fabric_jobs.cli.grpc_tls import add_grpc_client_tls_options, add_grpc_server_tls_options  # it imports us

    parser = _Parser(
        prog="fabric-jobs",
        description="The Jobs API of Microsoft Fabric workloads: a gRPC JobService and a REST bridge exact to "
        f"Fabric's contract. Every option may also come from an environment variable {ENV_PREFIX}<NAME>.",
    )
    parser.add_argument("--version", action="version", version=f"fabric-jobs {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    serve = commands.add_parser(
        "serve",
        help="run the REST bridge and the JobService in one process (the embedded default)",
        description="Run the REST bridge and the gRPC JobService in one process, jobs on an in-process executor.",
    )
    grpc_only = commands.add_parser("grpc", help="run only the gRPC JobService", description="Run the JobService.")
    rest_only = commands.add_parser(
        "rest",
        help="run only the REST bridge, calling a JobService at --grpc-target",
        description="Run the REST bridge alone; it calls the JobService at --grpc-target.",
    )
    worker = commands.add_parser(
        "worker",
        help="run job handlers of job instances kept in PostgreSQL (scale-out)",
        description="Take job instances queued in PostgreSQL (procrastinate) and run their handlers; any number of "
        "workers may run. SIGTERM stops taking jobs and gives running handlers --shutdown-grace.",
    )
    migrate = commands.add_parser(
        "migrate",
        help="create or upgrade the database schema (ours and, on PostgreSQL, procrastinate's)",
        description="Apply pending schema migrations to --database; safe to run twice, or two at once. Services on "
        "PostgreSQL refuse to start on a database that is not migrated.",
    )
    manifest = commands.add_parser(
        "manifest",
        help="print the <JobScheduler> element of Fabric's item manifest for each item type of --jobs",
        description="Print, for each item type of the registry, the <JobScheduler> element of its Fabric item "
        "manifest (ItemDefinition.xsd): the deduplication options and the job types. A job type Fabric would "
        "reject (it names job types {itemType}.{JobName}) is left out with a warning on stderr; the exit status is "
        "1 when none is left.",
    )
    _add_jobs(manifest)
    for sub in (serve, grpc_only, rest_only):
        _add_common(sub)
    for sub in (worker, migrate):
        _add_common(sub, dev=False)
    _add_service(serve)
    _add_rest(serve, with_target=False)
    _option(
        serve,
        "--bridge-channel",
        "how the bridge reaches the JobService in this process: in-process (no sockets, no serialisation) or "
        "grpc (over the loopback gRPC port) (default: %(default)s)",
        "in-process",
        _choice("in-process", "grpc"),
    )
    _add_service(grpc_only, with_concurrency=False)
    for sub in (serve, grpc_only, worker):
        _add_metrics(sub)
    _add_rest(rest_only, with_target=True)
    for sub in (serve, grpc_only):
        add_grpc_server_tls_options(sub.add_argument_group("TLS of the gRPC port"))
    add_grpc_client_tls_options(
        serve.add_argument_group("TLS of the bridge's calls with --bridge-channel grpc (it presents --grpc-tls-cert)"),
        client_certificate=False,
    )
    add_grpc_client_tls_options(rest_only.add_argument_group("TLS of the calls to the JobService"))
    _add_service(worker, serves_grpc=False)
    _add_database(migrate.add_argument_group("database"))
    from fabric_jobs.cli.jobs_options import add_jobs_command

    add_jobs_command(commands)
    from fabric_jobs.cli.dev_tokens import add_dev_tokens_command

    add_dev_tokens_command(commands)
    return parser
