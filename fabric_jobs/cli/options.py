"""The command line's one parser: every command and its options, made with the option kit (option_kit)."""

from __future__ import annotations

import argparse
import pathlib
import re
from typing import Any

from fabric_jobs import __version__
from fabric_jobs.cli.grpc_tls import add_grpc_client_tls_options, add_grpc_server_tls_options
from fabric_jobs.cli.jobs_options import add_jobs_command
from fabric_jobs.cli.option_kit import (
    DEFAULT_GRPC_TARGET,
    ENV_PREFIX,
    Parser,
    choice,
    comma_separated,
    duration_seconds,
    grpc_target,
    option,
    optional_duration,
    port,
    positive_float,
    positive_int,
    switch,
)
from fabric_jobs.rest_bridge.auth import FABRIC_APP_IDS, AuthSettings
from fabric_jobs.rest_bridge.settings import BridgeSettings, HttpLimits
from fabric_jobs.server.backend import database_url_problem
from fabric_jobs.server.settings import DEFAULT_DATABASE, DEFAULT_START_DEADLINE_SECONDS, ServiceSettings

_URL_PATH = re.compile(r"(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*")
MIN_ADMIN_TOKEN_LENGTH = 16


def _url_path(value: str) -> str:
    """Empty, or a leading slash and no trailing one: the form routes are built from."""
    stripped = value.strip().strip("/")
    path = f"/{stripped}" if stripped else ""
    if not _URL_PATH.fullmatch(path):
        raise argparse.ArgumentTypeError(f"must be a URL path such as /workload, not {value!r}")
    return path


def _database_url(value: str) -> str:
    url = value.strip()
    problem = database_url_problem(url)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return url


def _add_common(parser: argparse.ArgumentParser, *, dev: bool = True) -> None:
    if dev:
        _add_dev(parser)
    option(
        parser,
        "--log-level",
        "DEBUG, INFO, WARNING or ERROR (default: %(default)s)",
        "INFO",
        lambda value: choice("DEBUG", "INFO", "WARNING", "ERROR")(value.upper()),
    )
    option(
        parser,
        "--log-format",
        "text (readable, the default) or json (one JSON object per line, for log shippers) (default: %(default)s)",
        "text",
        lambda value: choice("text", "json")(value.lower()),
    )


def _add_metrics(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("metrics (Prometheus)")
    option(
        group,
        "--metrics-port",
        "serve GET /metrics (Prometheus text format) on this port, for a process without a REST port; 0 picks a "
        "free one (default: none; `serve` also has them at /metrics on its REST port)",
        None,
        port,
    )
    option(
        group,
        "--metrics-host",
        "address the --metrics-port listens on (default: %(default)s)",
        "127.0.0.1",
    )


def _add_dev(parser: argparse.ArgumentParser) -> None:
    switch(parser, "--dev", "development mode: no authentication, loopback only; says so loudly at start")


def _add_database(group: Any) -> None:
    option(
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
    option(
        group,
        "--jobs",
        "the job registry to load, package.module:attribute, imported from --app-dir first (default: the demo, "
        f"{DEMO_JOBS}; on PostgreSQL a grpc, worker or serve process must name it, the same in every process)",
    )
    option(
        group,
        "--app-dir",
        "folder put first on the import path for --jobs (default: the current directory)",
        ".",
    )


def _add_service(parser: argparse.ArgumentParser, *, serves_grpc: bool = True, with_concurrency: bool = True) -> None:
    defaults = ServiceSettings()
    group = parser.add_argument_group("JobService (gRPC)" if serves_grpc else "worker")
    if serves_grpc:
        option(group, "--grpc-host", "address the gRPC JobService listens on (default: %(default)s)", "127.0.0.1")
        option(group, "--grpc-port", "its port; 0 picks a free one (default: %(default)s)", "50051", port)
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
        (
            "--progress-interval",
            defaults.progress_interval,
            "a running job's progress reports (ctx.report_progress) are written at most once per this many seconds, "
            "the newest then; the last one is always written",
            True,
        ),
    )
    for flag, default, help_text, applies in seconds:
        if applies:
            option(group, flag, f"{help_text} (default: %(default)s)", str(default), positive_float)
    if serves_grpc:
        option(
            group,
            "--retention",
            "delete ended jobs (Completed, Failed, Cancelled) with their history this long after they ended, in "
            "the background, by one replica at a time: 30d, 12h, 90m; 0 keeps every job (default: %(default)s)",
            f"{defaults.retention_seconds / 86400:g}d",
            duration_seconds,
        )
    if serves_grpc:
        option(
            group,
            "--job-timeout",
            "how long a run of a job type registered without a timeout may take: past it the handler is told "
            "(reason TIMEOUT), stopped by force after --cancel-grace, and the job ends Failed, JobTimedOut "
            "(retriable); seconds or 90s, 30m, 12h; none for no limit (default: %(default)s)",
            "none",
            optional_duration,
        )
        option(
            group,
            "--start-deadline",
            "how long after its Create a job of a type registered without a start deadline may start: one still "
            "NotStarted then ends Failed, JobStartDeadlineExceeded (retriable), and never starts; Fabric stops "
            "polling a job not started within 2 hours; seconds or 90s, 30m, 2h; none for no limit "
            "(default: %(default)s)",
            f"{DEFAULT_START_DEADLINE_SECONDS / 3600:g}h",
            optional_duration,
        )
    option(
        group,
        "--max-running-per-tenant",
        "at most this many jobs of one tenant run at once, counted across every process on the database (give "
        "every grpc, worker and serve process the same value); the others wait NotStarted and start, oldest first, "
        "as the tenant's running jobs end (default: none)",
        None,
        positive_int,
    )
    option(
        group,
        "--max-threads",
        "threads for plain (non-async) handlers (default: %(default)s)",
        str(defaults.max_threads),
        positive_int,
    )
    if with_concurrency:
        option(
            group,
            "--concurrency",
            "on PostgreSQL, how many jobs this process runs at once (default: %(default)s)",
            str(defaults.worker_concurrency),
            positive_int,
        )


def _add_rest(parser: argparse.ArgumentParser, *, with_target: bool) -> None:
    defaults = BridgeSettings()
    group = parser.add_argument_group("REST bridge (HTTP)")
    option(group, "--rest-host", "address the REST bridge listens on (default: %(default)s)", "127.0.0.1")
    option(group, "--rest-port", "its port; 0 picks a free one (default: %(default)s)", "8080", port)
    if with_target:
        option(
            group,
            "--grpc-target",
            "address of the JobService the bridge calls: host:port, unix:path, or several replicas as "
            "dns:///name:port or ipv4:host1:port1,host2:port2, balanced round-robin; calls that fail UNAVAILABLE "
            "or CANCELLED (a replica shutting down) are retried on another replica (default: %(default)s)",
            DEFAULT_GRPC_TARGET,
            grpc_target,
        )
    option(
        group,
        "--rest-base-path",
        "path prefix under which the Jobs API, /healthz, /readyz and /openapi.json are served, e.g. /workload "
        "(default: none)",
        defaults.base_path,
        _url_path,
    )
    option(
        group,
        "--request-timeout",
        "seconds a REST request may take: the deadline of its gRPC call (default: %(default)s)",
        str(defaults.request_timeout_seconds),
        positive_float,
    )
    option(
        group,
        "--max-body-bytes",
        "largest accepted request body in bytes; a larger one is answered 413 (default: %(default)s)",
        str(defaults.max_body_bytes),
        positive_int,
    )
    _add_http_limits(group)
    _add_auth(parser)
    _add_console(parser)


def _add_console(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("web console for operators (admin port; off unless --admin-port is set)")
    option(group, "--admin-host", "address the web console listens on (default: %(default)s)", "127.0.0.1")
    option(
        group,
        "--admin-port",
        "serve the web console at http://ADMIN-HOST:ADMIN-PORT/console; 0 picks a free port (default: off)",
        converter=port,
    )
    option(
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
        option(group, flag, f"{help_text} (default: %(default)s)", str(default), positive_float)
    option(
        group,
        "--http-max-connections",
        "HTTP connections open at once; a request on one more is answered 503 and its connection closed "
        "(default: %(default)s)",
        str(limits.max_connections),
        positive_int,
    )
    option(
        group,
        "--http-max-header-bytes",
        "largest request line and headers of a request in bytes; larger is answered 431 (default: %(default)s)",
        str(limits.max_header_bytes),
        positive_int,
    )


def _add_auth(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("authentication of Fabric's calls (all but --dev)")
    option(
        group,
        "--auth-audience",
        "comma-separated audiences accepted in both tokens: the workload's Entra app id URI and/or app id "
        "(required unless in dev mode)",
        converter=comma_separated,
    )
    option(
        group,
        "--auth-publisher-tenant-id",
        "tenant id (GUID) of the workload's publisher; Fabric's app token must be issued in it "
        "(required unless in dev mode)",
        converter=str.strip,
    )
    option(
        group,
        "--auth-app-ids",
        "comma-separated app ids accepted as the calling app (default: Fabric's two app ids)",
        ",".join(sorted(FABRIC_APP_IDS)),
        comma_separated,
    )
    option(
        group,
        "--auth-jwks-file",
        "local JWKS file with the token signing keys, for tests and air-gapped runs (used instead of the URL)",
        converter=pathlib.Path,
    )
    option(
        group,
        "--auth-jwks-url",
        "URL of the JWKS with the token signing keys (default: %(default)s)",
        AuthSettings.jwks_url,
    )


def _https_url(value: str) -> str:
    url = value.strip().rstrip("/")
    if not re.fullmatch(r"https://[^/\s?#]+(/[^\s?#]*)?", url):
        raise argparse.ArgumentTypeError(f"must be an https:// URL, not {value!r}")
    return url


def _add_entra(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "acting for the user: tokens on behalf of a job's user (Entra on-behalf-of), for job types registered "
        "with user_scopes; set all of --entra-client-id, one app credential and --token-key-file, or none"
    )
    option(
        group,
        "--entra-client-id",
        "the workload's Entra app id (the app Fabric's tokens are issued to), which exchanges the user's token",
        converter=str.strip,
    )
    option(
        group,
        "--entra-client-secret-file",
        "file holding the app's client secret (or use --entra-client-certificate-file)",
        converter=pathlib.Path,
    )
    option(
        group,
        "--entra-client-certificate-file",
        "PEM file holding the app's certificate and its unencrypted private key (or use --entra-client-secret-file)",
        converter=pathlib.Path,
    )
    option(
        group,
        "--entra-authority",
        "Microsoft Entra's sign-in host; the user's tenant is appended (default: %(default)s)",
        "https://login.microsoftonline.com",
        _https_url,
    )
    option(
        group,
        "--entra-ca-file",
        "PEM bundle of the CAs trusted for --entra-authority instead of the system's (a proxy, a test stand-in); "
        "it wins over REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE",
        converter=pathlib.Path,
    )
    option(
        group,
        "--token-key-file",
        "file holding the key that encrypts the credentials kept for jobs acting for their user: 32 random bytes, "
        "base64 (`openssl rand -base64 32`); every grpc, serve and worker process of a deployment needs the same",
        converter=pathlib.Path,
    )
    option(
        group,
        "--token-old-key-file",
        "while rotating --token-key-file: the previous key, still accepted to decrypt what it encrypted",
        converter=pathlib.Path,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="fabric-jobs",
        description="The Jobs API of Microsoft Fabric workloads: a gRPC JobService and a REST bridge exact to "
        f"Fabric's contract. Every option may also come from an environment variable {ENV_PREFIX}<NAME>.",
    )
    parser.add_argument("--version", action="version", version=f"fabric-jobs {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
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
    option(
        serve,
        "--bridge-channel",
        "how the bridge reaches the JobService in this process: in-process (no sockets, no serialisation) or "
        "grpc (over the loopback gRPC port) (default: %(default)s)",
        "in-process",
        choice("in-process", "grpc"),
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
    for sub in (serve, grpc_only, worker):
        _add_entra(sub)
    _add_database(migrate.add_argument_group("database"))
    add_jobs_command(commands)
    from fabric_jobs.cli.dev_tokens import add_dev_tokens_command

    add_dev_tokens_command(commands)
    return parser
