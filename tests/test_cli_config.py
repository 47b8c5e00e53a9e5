"""Options and FABRIC_JOBS_* variables to the settings and collaborators each component is given, checked once."""

from __future__ import annotations

import argparse
import os
import pathlib

import pytest

from fabric_jobs.cli.config import Config, auth_settings_from_args, config_from_args
from fabric_jobs.cli.option_kit import DEFAULT_GRPC_TARGET, ConfigError
from fabric_jobs.cli.options import build_parser
from fabric_jobs.rest_bridge.auth import FABRIC_APP_IDS, AuthError, AuthSettings
from fabric_jobs.rest_bridge.settings import BridgeSettings
from fabric_jobs.server.settings import ServiceSettings
from tests import tokens

TENANT = tokens.PUBLISHER_TENANT_ID
ENTRA_OPTIONS: tuple[str, ...] = ("entra-client-id", "entra-client-secret-file", "entra-client-certificate-file")
ENTRA_OPTIONS += ("entra-authority", "entra-ca-file", "token-key-file", "token-old-key-file")


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("FABRIC_JOBS_")]:
        monkeypatch.delenv(name)


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def configure(*argv: str) -> Config:
    return config_from_args(parse(*argv))


def rejected(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one line the parser prints for a bad option, after exiting with status 2."""
    with pytest.raises(SystemExit) as exited:
        parse(*argv)
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_dev_defaults_are_the_settings_defaults() -> None:
    config = configure("serve", "--dev")
    assert config.service is not None
    assert config.service.settings == ServiceSettings()
    assert (config.service.host, config.service.port) == ("127.0.0.1", 50051)
    assert config.bridge is not None
    assert config.bridge.settings == BridgeSettings()
    assert config.bridge.authenticator is None
    assert config.bridge.in_process
    assert config.bridge.grpc_target is None


def test_each_command_configures_what_it_runs() -> None:
    rest = configure("rest", "--dev")
    assert rest.service is None
    assert rest.bridge is not None
    assert rest.bridge.grpc_target == DEFAULT_GRPC_TARGET
    assert not rest.bridge.in_process
    grpc_only = configure("grpc", "--dev")
    assert grpc_only.bridge is None
    assert grpc_only.service is not None
    over_grpc = configure("serve", "--dev", "--bridge-channel", "grpc")
    assert over_grpc.bridge is not None
    assert not over_grpc.bridge.in_process


def test_options(tmp_path: pathlib.Path) -> None:
    args = parse(
        "rest",
        "--rest-base-path=/workload/",
        "--grpc-target=unix:/tmp/jobs.sock",
        "--request-timeout=2.5",
        "--max-body-bytes=1000",
        "--auth-audience=api://a, app-id",
        f"--auth-publisher-tenant-id={TENANT}",
        "--auth-app-ids=x,y",
        f"--auth-jwks-file={tmp_path / 'jwks.json'}",
    )
    assert auth_settings_from_args(args) == AuthSettings(
        audiences=("api://a", "app-id"),
        publisher_tenant_id=TENANT,
        app_ids=frozenset({"x", "y"}),
        jwks_file=tmp_path / "jwks.json",
    )
    tokens.write_jwks(tmp_path)
    bridge = config_from_args(args).bridge
    assert bridge is not None
    assert bridge.settings == BridgeSettings(base_path="/workload", request_timeout_seconds=2.5, max_body_bytes=1000)
    assert bridge.grpc_target == "unix:/tmp/jobs.sock"


async def test_the_authenticator_is_built_once_from_the_options(tmp_path: pathlib.Path) -> None:
    config = configure(
        "serve",
        f"--auth-audience={tokens.TEST_AUDIENCE}",
        f"--auth-publisher-tenant-id={TENANT}",
        f"--auth-jwks-file={tokens.write_jwks(tmp_path)}",
    )
    assert config.bridge is not None
    assert config.bridge.authenticator is not None
    header = tokens.authorization_header(tokens.mint_subject_token(), tokens.mint_app_token())
    await config.bridge.authenticator.authenticate(header, tokens.CLIENT_TENANT_ID)
    with pytest.raises(AuthError, match="tenant does not match"):
        await config.bridge.authenticator.authenticate(header, tokens.OTHER_TENANT_ID)


def test_environment_gives_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FABRIC_JOBS_AUTH_AUDIENCE", "api://env")
    monkeypatch.setenv("FABRIC_JOBS_AUTH_PUBLISHER_TENANT_ID", TENANT)
    monkeypatch.setenv("FABRIC_JOBS_REST_BASE_PATH", "/env")
    monkeypatch.setenv("FABRIC_JOBS_AUTH_JWKS_URL", "https://keys.example/jwks")
    monkeypatch.setenv("FABRIC_JOBS_CANCEL_WAIT", "0.25")
    args = parse("serve")
    assert args.rest_base_path == "/env"
    assert args.cancel_wait == 0.25
    assert auth_settings_from_args(args) == AuthSettings(
        audiences=("api://env",),
        publisher_tenant_id=TENANT,
        app_ids=FABRIC_APP_IDS,
        jwks_url="https://keys.example/jwks",
    )
    assert auth_settings_from_args(parse("serve", "--auth-audience=api://flag")).audiences == ("api://flag",)


@pytest.mark.parametrize(
    ("command", "switch", "variable"),
    [
        (("serve",), "dev", "FABRIC_JOBS_DEV"),
        (("grpc",), "grpc_insecure", "FABRIC_JOBS_GRPC_INSECURE"),
        (("jobs", "list"), "json", "FABRIC_JOBS_JSON"),
    ],
)
def test_every_switch_is_on_from_its_variable_when_it_says_yes(
    monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...], switch: str, variable: str
) -> None:
    assert getattr(parse(*command), switch) is False
    for yes in ("1", "true", "yes", "TRUE", " Yes "):
        monkeypatch.setenv(variable, yes)
        assert getattr(parse(*command), switch) is True, yes
    for no in ("0", "false", "no", "", "on"):
        monkeypatch.setenv(variable, no)
        assert getattr(parse(*command), switch) is False, no


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ((f"--auth-publisher-tenant-id={TENANT}",), "set --auth-audience or FABRIC_JOBS_AUTH_AUDIENCE"),
        (
            ("--auth-audience=api://a",),
            "set --auth-publisher-tenant-id or FABRIC_JOBS_AUTH_PUBLISHER_TENANT_ID",
        ),
        (
            ("--auth-audience=api://a", f"--auth-publisher-tenant-id={TENANT}", "--auth-app-ids= , "),
            "--auth-app-ids or FABRIC_JOBS_AUTH_APP_IDS must name at least one app id",
        ),
        (
            ("--auth-audience=api://a", "--auth-publisher-tenant-id=contoso"),
            "authentication: the publisher tenant id must be a GUID, not 'contoso'",
        ),
    ],
)
def test_authentication_errors_say_what_to_set_in_one_line(argv: tuple[str, ...], says: str) -> None:
    with pytest.raises(ConfigError) as raised:
        configure("rest", *argv)
    assert "\n" not in str(raised.value)
    assert says in str(raised.value)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("--request-timeout=soon",), "argument --request-timeout: must be a number of seconds, not 'soon'"),
        (("--max-body-bytes=0",), "argument --max-body-bytes: must be at least 1, not '0'"),
        (("--rest-base-path=work load",), "argument --rest-base-path: must be a URL path such as /workload"),
        (("--grpc-target= ",), "argument --grpc-target: must be host:port or unix:path, not ' '"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_option(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], says: str
) -> None:
    line = rejected(capsys, "rest", *argv)
    assert line.startswith("fabric-jobs rest: error: ")
    assert says in line
    assert "FABRIC_JOBS_" not in line


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ((), (None, 7200.0)),
        (("--job-timeout=90", "--start-deadline=30m"), (90.0, 1800.0)),
        (("--job-timeout=1.5h", "--start-deadline=none"), (5400.0, None)),
        (("--job-timeout=none", "--start-deadline=0"), (None, None)),
    ],
)
@pytest.mark.parametrize("command", ["serve", "grpc"])
def test_deadline_options_set_the_service_defaults(
    command: str, argv: tuple[str, ...], expected: tuple[float | None, float | None]
) -> None:
    service = configure(command, "--dev", *argv).service
    assert service is not None
    assert (service.settings.job_timeout_seconds, service.settings.start_deadline_seconds) == expected


def test_deadline_options_come_from_the_environment_and_refuse_what_is_no_length_of_time(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FABRIC_JOBS_JOB_TIMEOUT", "10m")
    monkeypatch.setenv("FABRIC_JOBS_START_DEADLINE", "1h")
    args = parse("grpc")
    assert (args.job_timeout, args.start_deadline) == (600.0, 3600.0)
    for value in ("-5", "soon", "inf", "10x"):
        line = rejected(capsys, "grpc", f"--job-timeout={value}")
        assert "argument --job-timeout: must be" in line, line
    assert "unrecognized arguments: --job-timeout=5" in rejected(capsys, "worker", "--job-timeout=5")  # fixed at Create


def test_a_bad_value_from_the_environment_names_its_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FABRIC_JOBS_MAX_BODY_BYTES", "lots")
    line = rejected(capsys, "rest")
    assert "argument --max-body-bytes: must be a whole number, not 'lots' [env FABRIC_JOBS_MAX_BODY_BYTES]" in line
    assert parse("rest", "--max-body-bytes=10").max_body_bytes == 10


@pytest.mark.parametrize("command", ["serve", "grpc", "worker"])
def test_the_cap_per_tenant_is_off_by_default_and_set_by_option_or_variable(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = ("--database", "postgresql://u@db/jobs", "--jobs", "fabric_jobs.demo:registry")
    assert parse(command, *database).max_running_per_tenant is None
    assert parse(command, *database, "--max-running-per-tenant", "4").max_running_per_tenant == 4
    assert "argument --max-running-per-tenant: must be at least 1, not '0'" in rejected(
        capsys, command, *database, "--max-running-per-tenant=0"
    )
    monkeypatch.setenv("FABRIC_JOBS_MAX_RUNNING_PER_TENANT", "2")
    config = configure(command, *database) if command == "worker" else configure(command, "--dev", *database)
    settings = config.worker.settings if config.worker is not None else config.service.settings  # type: ignore[union-attr]
    assert settings.max_running_per_tenant == 2


def test_dev_refuses_hosts_off_loopback() -> None:
    with pytest.raises(ConfigError, match=r"--dev refuses --grpc-host 0\.0\.0\.0"):
        configure("grpc", "--dev", "--grpc-host", "0.0.0.0")
    assert configure("serve", "--dev", "--rest-host", "::1", "--grpc-host", "localhost").dev


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("serve", ("grpc-port", "database", "jobs", "cancel-wait", "rest-base-path", "bridge-channel")),
        ("serve", ("http-header-timeout", "http-body-timeout", "http-keepalive-timeout", "http-max-connections")),
        ("serve", ("http-max-header-bytes", "grpc-tls-cert", "grpc-tls-key", "grpc-tls-client-ca", "grpc-insecure")),
        ("serve", ("grpc-tls-ca", "grpc-tls-server-name")),
        *((command, ENTRA_OPTIONS) for command in ("serve", "grpc", "worker")),
        ("grpc", ("grpc-host", "lease-seconds", "max-threads", "shutdown-grace", "log-level")),
        *((command, ("job-timeout", "start-deadline")) for command in ("serve", "grpc")),
        ("grpc", ("grpc-tls-cert", "grpc-tls-key", "grpc-tls-client-ca", "grpc-insecure")),
        (
            "rest",
            (
                "grpc-target",
                "request-timeout",
                "max-body-bytes",
                "auth-audience",
                "auth-publisher-tenant-id",
                "auth-app-ids",
                "auth-jwks-file",
                "auth-jwks-url",
                "grpc-tls-ca",
                "grpc-tls-cert",
                "grpc-tls-key",
                "grpc-tls-server-name",
                "http-header-timeout",
                "http-max-connections",
                "admin-host",
                "admin-port",
                "admin-token",
            ),
        ),
        ("jobs", ()),
        ("jobs list", ("grpc-target", "timeout", "tenant", "workspace", "item-type", "item", "job-type", "status")),
        ("jobs list", ("since", "limit")),
        ("jobs watch", ("grpc-target", "tenant", "workspace", "item-type", "item", "job-type")),
    ],
)
def test_help_names_every_option_and_its_environment_variable(
    capsys: pytest.CaptureFixture[str], command: str, options: tuple[str, ...]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(*command.split(), "--help")
    assert exited.value.code == 0
    text = capsys.readouterr().out.replace("\n", "").replace(" ", "")
    for option in options:
        assert f"--{option}" in text
        assert "FABRIC_JOBS_" + option.upper().replace("-", "_") in text


TOKEN = "a-token-of-sixteen-or-more"


def test_the_console_is_off_unless_its_port_is_set_and_on_loopback_by_default() -> None:
    assert configure("serve", "--dev").console is None
    console = configure("serve", "--dev", "--admin-port", "0").console
    assert console is not None
    assert (console.host, console.port, console.settings.token) == ("127.0.0.1", 0, None)


def test_a_console_off_loopback_needs_a_token_of_sixteen_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"^--admin-host 0\.0\.0\.0 is not loopback: .* set --admin-token or "):
        configure("serve", "--admin-host", "0.0.0.0", "--admin-port", "8081")
    with pytest.raises(ConfigError, match="--admin-token or FABRIC_JOBS_ADMIN_TOKEN must be at least 16 characters"):
        configure("serve", "--dev", "--admin-port", "8081", "--admin-token", "short")
    with pytest.raises(ConfigError, match=r"--dev refuses --admin-host 10\.1\.2\.3"):
        configure("serve", "--dev", "--admin-host", "10.1.2.3", "--admin-port", "8081", "--admin-token", TOKEN)
    monkeypatch.setenv("FABRIC_JOBS_ADMIN_TOKEN", TOKEN)
    console = configure(
        "rest",
        "--admin-host",
        "::",
        "--admin-port",
        "8081",
        "--auth-audience",
        "a",
        "--auth-publisher-tenant-id",
        TENANT,
    ).console
    assert console is not None
    assert (console.host, console.settings.token) == ("::", TOKEN)
