"""TLS and mutual TLS on the gRPC port, with certificates made for the test: calls that present what the
server asks for succeed, others are refused; the bridge works over TLS through real processes; plain text
on a non-loopback address needs --grpc-insecure; bad certificate options are one line and exit 2."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fabric_jobs.cli.config import config_from_args
from fabric_jobs.cli.grpc_tls import grpc_client_tls
from fabric_jobs.cli.option_kit import ConfigError
from fabric_jobs.cli.options import build_parser
from fabric_jobs.client import open_channel
from fabric_jobs.server.app import SERVICE_NAME, JobServer, start_job_server
from tests.processes import STARTUP_SECONDS, clean_env, command, launch, stop
from tests.test_cli import _create_get_cancel_over_rest
from tests.tls import Certificates, make_certificates


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("FABRIC_JOBS_")]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def _server_tls(certs: Certificates, *, mutual: bool) -> list[str]:
    options = ["--grpc-tls-cert", str(certs.server.cert), "--grpc-tls-key", str(certs.server.key)]
    return options + (["--grpc-tls-client-ca", str(certs.ca)] if mutual else [])


def _client_tls(certs: Certificates, client: str | None = "client") -> list[str]:
    pem = {"client": certs.client, "stray": certs.other_client}.get(client or "")
    options = ["--grpc-tls-ca", str(certs.ca)]
    return options + (["--grpc-tls-cert", str(pem.cert), "--grpc-tls-key", str(pem.key)] if pem else [])


async def _start(tmp_path: Path, options: list[str]) -> JobServer:
    """A JobServer whose TLS comes from `grpc` command options, as the command would start it."""
    database = f"sqlite:///{tmp_path / 'jobs.db'}"
    config = config_from_args(build_parser().parse_args(["grpc", "--grpc-port", "0", "--database", database, *options]))
    assert config.service is not None
    service = config.service
    return await start_job_server(service.settings, service.registry, port=0, credentials=service.credentials)


@pytest.fixture
async def tls_server(tmp_path: Path, certs: Certificates) -> AsyncIterator[JobServer]:
    server = await _start(tmp_path, _server_tls(certs, mutual=False))
    yield server
    await server.stop(grace=1.0)


@pytest.fixture
async def mtls_server(tmp_path: Path, certs: Certificates) -> AsyncIterator[JobServer]:
    server = await _start(tmp_path, _server_tls(certs, mutual=True))
    yield server
    await server.stop(grace=1.0)


def _client_channel(server: JobServer, options: list[str]) -> grpc.aio.Channel:
    """A channel made by the client options' one function, as a client command makes it."""
    tls = grpc_client_tls(build_parser().parse_args(["rest", "--dev", *options]))
    assert tls is not None
    return open_channel(server.address, tls=tls)


SERVING = health_pb2.HealthCheckResponse.SERVING


async def _health(channel: grpc.aio.Channel) -> int:
    async with channel:
        request = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
        response = await health_pb2_grpc.HealthStub(channel).Check(request, timeout=10)
        return int(response.status)


async def test_a_call_over_tls_succeeds(tls_server: JobServer, certs: Certificates) -> None:
    assert (
        await _health(_client_channel(tls_server, _client_tls(certs, None))) == health_pb2.HealthCheckResponse.SERVING
    )


async def test_a_call_with_a_client_certificate_succeeds_over_mutual_tls(
    mtls_server: JobServer, certs: Certificates
) -> None:
    assert await _health(_client_channel(mtls_server, _client_tls(certs))) == SERVING


@pytest.mark.parametrize("client", [None, "stray"], ids=["no-certificate", "certificate-of-another-ca"])
async def test_mutual_tls_refuses_a_client_without_a_certificate_of_its_ca(
    mtls_server: JobServer, certs: Certificates, client: str | None
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _health(_client_channel(mtls_server, _client_tls(certs, client)))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_plain_text_client_cannot_call_a_tls_server(tls_server: JobServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _health(grpc.aio.insecure_channel(tls_server.address))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_client_that_does_not_trust_the_server_ca_is_refused(
    tls_server: JobServer, certs: Certificates
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _health(_client_channel(tls_server, ["--grpc-tls-ca", str(certs.other_ca)]))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_the_bridge_calls_a_mutual_tls_jobservice_across_processes(tmp_path: Path, certs: Certificates) -> None:
    database = f"sqlite:///{tmp_path / 'jobs.db'}"
    chain, key = certs.client.read()
    credentials = grpc.ssl_channel_credentials(certs.ca.read_bytes(), key, chain)
    args = ["grpc", "--dev", "--grpc-port", "0", "--database", database, *_server_tls(certs, mutual=True)]
    service = launch(args, grpc=True, grpc_credentials=credentials)
    try:
        target = ["--grpc-target", service.grpc_address]
        bridge = launch(["rest", "--dev", "--rest-port", "0", *target, *_client_tls(certs)], rest=True)
        try:
            await _create_get_cancel_over_rest(bridge)
        finally:
            bridge_output = await asyncio.to_thread(stop, bridge)
        assert bridge.process.returncode == 0, bridge_output
    finally:
        service_output = await asyncio.to_thread(stop, service)
    assert service.process.returncode == 0, service_output


async def test_serve_with_its_bridge_over_mutual_tls(tmp_path: Path, certs: Certificates) -> None:
    database = f"sqlite:///{tmp_path / 'jobs.db'}"
    args = ["serve", "--dev", "--grpc-port", "0", "--rest-port", "0", "--database", database]
    tls = [*_server_tls(certs, mutual=True), "--grpc-tls-ca", str(certs.ca), "--bridge-channel", "grpc"]
    serve = launch([*args, *tls], grpc=True, rest=True)
    try:
        await _create_get_cancel_over_rest(serve)
    finally:
        output = await asyncio.to_thread(stop, serve)
    assert serve.process.returncode == 0, output
    assert f"JobService at {serve.grpc_address}" in output


def _refusal(tmp_path: Path, *args: str) -> str:
    """The one line of stderr of a command that must refuse to start with exit status 2."""
    done = subprocess.run(
        command(*args), capture_output=True, text=True, timeout=STARTUP_SECONDS, env=clean_env(), cwd=tmp_path
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("args", [["grpc"], ["serve", "--rest-port", "0"]], ids=["grpc", "serve"])
def test_plain_text_on_a_non_loopback_address_is_refused(tmp_path: Path, args: list[str]) -> None:
    line = _refusal(tmp_path, *args, "--grpc-host", "0.0.0.0", "--grpc-port", "0")
    assert "--grpc-host 0.0.0.0 is not loopback" in line
    assert "--grpc-insecure" in line


async def test_grpc_insecure_allows_plain_text_on_a_non_loopback_address(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'jobs.db'}"
    args = ["grpc", "--grpc-host", "0.0.0.0", "--grpc-port", "0", "--grpc-insecure", "--database", database]
    service = launch(args, grpc=True)
    output = await asyncio.to_thread(stop, service)
    assert service.process.returncode == 0, output


def test_tls_on_a_non_loopback_address_is_accepted(certs: Certificates) -> None:
    args = ["grpc", "--grpc-host", "0.0.0.0", *_server_tls(certs, mutual=True)]
    config = config_from_args(build_parser().parse_args(args))
    assert config.service is not None
    assert config.service.credentials is not None


def test_a_mismatched_certificate_and_key_is_one_line_and_exit_2(tmp_path: Path, certs: Certificates) -> None:
    mismatched = ["--grpc-tls-cert", str(certs.server.cert), "--grpc-tls-key", str(certs.client.key)]
    line = _refusal(tmp_path, "grpc", "--grpc-port", "0", *mismatched)
    assert f"--grpc-tls-key {certs.client.key} is not the private key of --grpc-tls-cert" in line


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--grpc-tls-cert", "missing.pem", "--grpc-tls-key", "missing.key"], "--grpc-tls-cert"),
        (["--grpc-tls-cert", "{server_cert}"], "--grpc-tls-cert and --grpc-tls-key go together"),
        (["--grpc-tls-cert", "{server_key}", "--grpc-tls-key", "{server_key}"], "not a PEM certificate"),
        (["--grpc-tls-cert", "{server_cert}", "--grpc-tls-key", "{server_cert}"], "not an unencrypted PEM private key"),
        (["--grpc-tls-client-ca", "{ca}"], "--grpc-tls-client-ca or FABRIC_JOBS_GRPC_TLS_CLIENT_CA needs TLS"),
        (["--grpc-tls-client-ca", "{server_key}", *["--grpc-tls-cert", "{server_cert}"]], "go together"),
    ],
)
def test_bad_tls_options_are_a_config_error(certs: Certificates, options: list[str], says: str) -> None:
    paths = {"server_cert": certs.server.cert, "server_key": certs.server.key, "ca": certs.ca}
    args = ["grpc", *(option.format(**paths) for option in options)]
    with pytest.raises(ConfigError, match=says):
        config_from_args(build_parser().parse_args(args))


def test_a_client_ca_that_is_not_a_certificate_is_a_config_error(certs: Certificates) -> None:
    options = [*_client_tls(certs), "--grpc-target", "127.0.0.1:1"]
    options[1] = str(certs.client.key)
    with pytest.raises(ConfigError, match=r"--grpc-tls-ca .*: not a PEM certificate"):
        config_from_args(build_parser().parse_args(["rest", "--dev", *options]))


async def test_the_jobs_command_lists_over_mutual_tls(mtls_server: JobServer, certs: Certificates) -> None:
    listing = ["jobs", "list", "--grpc-target", mtls_server.address, "--json", "--timeout", "5"]
    done = await asyncio.to_thread(
        subprocess.run,
        command(*listing, *_client_tls(certs)),
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"jobInstances": []}
    refused = await asyncio.to_thread(
        subprocess.run,
        command(*listing, *_client_tls(certs, None)),
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
        env=clean_env(),
    )
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1
    assert f"cannot reach a fabric-jobs service at {mtls_server.address}" in refused.stderr
