from __future__ import annotations

import argparse
import pathlib

import pytest

from fabric_jobs.rest_bridge.auth import FABRIC_APP_IDS
from fabric_jobs.rest_bridge.settings import (
    BridgeSettings,
    ConfigError,
    add_bridge_arguments,
    bridge_settings_from_args,
)

TENANT = "2b6e8f4a-5c1d-4e7f-9a3b-0c8d7e6f5a41"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_bridge_arguments(parser)
    return parser.parse_args(argv)


def test_dev_defaults_are_the_settings_defaults() -> None:
    assert bridge_settings_from_args(parse(), dev=True) == BridgeSettings()


def test_options(tmp_path: pathlib.Path) -> None:
    args = parse(
        "--rest-base-path=/workload/",
        "--grpc-target=unix:/tmp/jobs.sock",
        "--request-timeout=2.5",
        "--max-body-bytes=1000",
        "--auth-audience=api://a, app-id",
        f"--auth-publisher-tenant-id={TENANT}",
        "--auth-app-ids=x,y",
        f"--auth-jwks-file={tmp_path / 'jwks.json'}",
    )
    settings = bridge_settings_from_args(args, dev=False)
    assert settings.base_path == "/workload"
    assert settings.grpc_target == "unix:/tmp/jobs.sock"
    assert settings.request_timeout_seconds == 2.5
    assert settings.max_body_bytes == 1000
    assert settings.auth is not None
    assert settings.auth.audiences == ("api://a", "app-id")
    assert settings.auth.publisher_tenant_id == TENANT
    assert settings.auth.app_ids == frozenset({"x", "y"})
    assert settings.auth.jwks_file == tmp_path / "jwks.json"


def test_environment_gives_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FABRIC_JOBS_AUTH_AUDIENCE", "api://env")
    monkeypatch.setenv("FABRIC_JOBS_AUTH_PUBLISHER_TENANT_ID", TENANT)
    monkeypatch.setenv("FABRIC_JOBS_REST_BASE_PATH", "/env")
    monkeypatch.setenv("FABRIC_JOBS_AUTH_JWKS_URL", "https://keys.example/jwks")
    settings = bridge_settings_from_args(parse(), dev=False)
    assert settings.base_path == "/env"
    assert settings.auth is not None
    assert settings.auth.audiences == ("api://env",)
    assert settings.auth.app_ids == FABRIC_APP_IDS
    assert settings.auth.jwks_url == "https://keys.example/jwks"
    assert bridge_settings_from_args(parse("--auth-audience=api://flag"), dev=False).auth.audiences == ("api://flag",)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        ((f"--auth-publisher-tenant-id={TENANT}",), ("--auth-audience", "FABRIC_JOBS_AUTH_AUDIENCE")),
        (("--auth-audience=api://a",), ("--auth-publisher-tenant-id", "FABRIC_JOBS_AUTH_PUBLISHER_TENANT_ID")),
        (("--request-timeout=soon",), ("--request-timeout", "FABRIC_JOBS_REQUEST_TIMEOUT")),
        (("--max-body-bytes=0",), ("--max-body-bytes", "FABRIC_JOBS_MAX_BODY_BYTES")),
    ],
)
def test_config_errors_say_what_to_set_in_one_line(argv: tuple[str, ...], names: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as raised:
        bridge_settings_from_args(parse(*argv), dev=False)
    message = str(raised.value)
    assert "\n" not in message
    assert all(name in message for name in names)


def test_help_mentions_every_option_and_its_environment_variable() -> None:
    parser = argparse.ArgumentParser()
    add_bridge_arguments(parser)
    text = parser.format_help()
    for option in (
        "rest-base-path",
        "grpc-target",
        "request-timeout",
        "max-body-bytes",
        "auth-audience",
        "auth-publisher-tenant-id",
        "auth-app-ids",
        "auth-jwks-file",
        "auth-jwks-url",
    ):
        assert f"--{option}" in text
        assert "FABRIC_JOBS_" + option.upper().replace("-", "_") in text.replace("\n", "").replace(" ", "")
