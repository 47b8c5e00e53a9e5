"""The acting-for-the-user options of serve, grpc and worker: all or none, each mistake one line and exit 2."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest

from fabric_jobs.cli.config import config_from_args
from fabric_jobs.cli.option_kit import ConfigError
from fabric_jobs.cli.options import build_parser
from fabric_jobs.on_behalf_of.tokens import EntraUserTokens
from tests.on_behalf_of.conftest import CLIENT_ID, CLIENT_SECRET, rsa_certificate
from tests.processes import clean_env, command

DEV = ["serve", "--dev"]
WORKER = ["worker", "--database=postgresql://127.0.0.1/db", "--jobs=fabric_jobs.demo:registry"]


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("FABRIC_JOBS_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    key = tmp_path / "token.key"
    key.write_text(base64.b64encode(os.urandom(32)).decode())
    short = tmp_path / "short.key"
    short.write_text(base64.b64encode(os.urandom(24)).decode())
    secret = tmp_path / "secret"
    secret.write_text(CLIENT_SECRET)
    certificate_only = rsa_certificate(tmp_path, with_key=False)
    return {"key": key, "short": short, "secret": secret, "certificate_only": certificate_only}


def config_error(*argv: str) -> str:
    with pytest.raises(ConfigError) as raised:
        config_from_args(build_parser().parse_args(argv))
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_with_every_option_each_handler_process_gets_entra_tokens(files: dict[str, Path]) -> None:
    options = [f"--entra-client-id={CLIENT_ID}", f"--entra-client-secret-file={files['secret']}"]
    options += [f"--token-key-file={files['key']}"]
    for argv in (DEV, ["grpc", "--jobs=fabric_jobs.demo:registry"], WORKER):
        config = config_from_args(build_parser().parse_args([*argv, *options]))
        service = config.service or config.worker
        assert service is not None
        assert isinstance(service.settings.user_tokens, EntraUserTokens)
        assert CLIENT_SECRET not in repr(service.settings)
    assert config_from_args(build_parser().parse_args(DEV)).service.settings.user_tokens is None  # type: ignore[union-attr]


def test_each_misconfiguration_is_one_line_saying_what_to_set(files: dict[str, Path]) -> None:
    client = f"--entra-client-id={CLIENT_ID}"
    secret = f"--entra-client-secret-file={files['secret']}"
    key = f"--token-key-file={files['key']}"
    assert "set --entra-client-id" in config_error(*DEV, secret, key)
    assert "exactly one app credential" in config_error(*DEV, client, key)
    both = f"--entra-client-certificate-file={files['certificate_only']}"
    assert "exactly one app credential" in config_error(*DEV, client, secret, both, key)
    assert "--token-key-file" in config_error(*DEV, client, secret)
    assert "holds 24 bytes, needs 32" in config_error(*DEV, client, secret, f"--token-key-file={files['short']}")
    missing = files["secret"].parent / "missing"
    assert f"client secret file {missing}" in config_error(*DEV, client, f"--entra-client-secret-file={missing}", key)
    without_key = f"--entra-client-certificate-file={files['certificate_only']}"
    assert "private key is not in it" in config_error(*WORKER, client, without_key, key)
    assert "--entra-ca-file" in config_error(*DEV, client, secret, key, f"--entra-ca-file={missing}")


def test_a_bad_key_file_stops_the_command_with_one_line_and_exit_2(files: dict[str, Path]) -> None:
    env = clean_env(
        FABRIC_JOBS_ENTRA_CLIENT_ID=CLIENT_ID,
        FABRIC_JOBS_ENTRA_CLIENT_SECRET_FILE=str(files["secret"]),
        FABRIC_JOBS_TOKEN_KEY_FILE=str(files["short"]),
    )
    result = subprocess.run(command("serve", "--dev"), capture_output=True, text=True, env=env, timeout=30)

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"fabric-jobs serve: error: key file {files['short']}: holds 24 bytes, needs 32 "
        "(make one with `openssl rand -base64 32`)"
    ]
    assert CLIENT_SECRET not in result.stdout + result.stderr
