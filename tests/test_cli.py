"""The real `fabric-jobs` process, driven as a user would: over gRPC and HTTP, stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc
from tests.harness import eventually
from tests.processes import STARTUP_SECONDS, Serve, clean_env, command, kill_if_running, launch, stop

WORKSPACE = "e5ef604d-e14f-4a59-9133-75d5a0cb9334"
ITEM = "b14cb7e7-d346-4751-9cfd-8c2767d53111"
TENANT = "7c1d1a1e-0000-4000-8000-00000000c11e"
ITEM_TYPE = "Contoso.FinanceAnalytics.Forecast"
JOB_TYPE = "calculateForecast"


def _start(tmp_path: Path, *extra: str, cwd: Path | None = None) -> Serve:
    database = f"sqlite:///{tmp_path / 'jobs.db'}"
    args = ["serve", "--dev", "--grpc-port", "0", "--rest-port", "0", "--database", database, *extra]
    return launch(args, grpc=True, rest=True, cwd=cwd)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    running = _start(tmp_path, "--cancel-wait", "2", "--shutdown-grace", "1")
    yield running
    kill_if_running(running)


def _key(job_instance_id: str) -> pb.JobInstanceKey:
    return pb.JobInstanceKey(
        tenant_id=TENANT,
        workspace_id=WORKSPACE,
        item_type=ITEM_TYPE,
        item_id=ITEM,
        job_type=JOB_TYPE,
        job_instance_id=job_instance_id,
    )


def _job_url(serve: Serve, job_instance_id: str) -> str:
    return (
        f"{serve.rest_url}/workspaces/{WORKSPACE}/items/{ITEM_TYPE}/{ITEM}/jobTypes/{JOB_TYPE}"
        f"/instances/{job_instance_id}"
    )


HEADERS = {"ActivityId": "cli-activity", "RequestId": "cli-request", "x-ms-client-tenant-id": TENANT}


async def test_serve_over_grpc_and_http_then_sigterm(serve: Serve) -> None:
    grpc_job = str(uuid.uuid4())
    async with grpc.aio.insecure_channel(serve.grpc_address) as channel:
        stub = pb_grpc.JobServiceStub(channel)
        created = await stub.CreateJobInstance(
            pb.CreateJobInstanceRequest(
                key=_key(grpc_job),
                invoke_type=pb.JOB_INVOKE_TYPE_MANUAL,
                creation_payload_json='{"durationSeconds": 60}',
            )
        )
        assert created.created

        rest_job = str(uuid.uuid4())
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(
                _job_url(serve, rest_job),
                json={"invokeType": 2, "creationPayload": {"durationSeconds": 60}},
                headers=HEADERS,
            )
            assert response.status_code == 202
            assert response.content == b""
            assert response.headers["RequestId"] == "cli-request"

            seen_by_rest = await client.get(_job_url(serve, grpc_job), headers=HEADERS)
            assert seen_by_rest.status_code == 200
            assert seen_by_rest.json()["status"] in ("NotStarted", "InProgress")

            cancelled = await client.post(_job_url(serve, rest_job) + "/cancel", headers=HEADERS)
            assert cancelled.status_code == 200
            assert cancelled.json()["status"] == "Cancelled"
            assert cancelled.json()["endTimeUtc"].endswith("Z")

        seen_by_grpc = await stub.GetJobInstance(pb.GetJobInstanceRequest(key=_key(rest_job)))
        assert seen_by_grpc.job_instance.status == pb.JOB_INSTANCE_STATUS_CANCELLED

    output = await asyncio.to_thread(stop, serve)
    assert serve.process.returncode == 0, output
    assert "DEV MODE" in output
    assert "activity=cli-activity request=cli-request" in output
    assert "JobService stopped" in output


async def _create_get_cancel_over_rest(rest: Serve) -> None:
    job = str(uuid.uuid4())
    async with httpx.AsyncClient(timeout=10) as client:
        body = {"invokeType": "Scheduled", "creationPayload": {"durationSeconds": 60}}
        assert (await client.post(_job_url(rest, job), json=body, headers=HEADERS)).status_code == 202
        assert (await client.get(_job_url(rest, job), headers=HEADERS)).json()["status"] in ("NotStarted", "InProgress")
        cancelled = await client.post(_job_url(rest, job) + "/cancel", headers=HEADERS)
        assert cancelled.json()["status"] == "Cancelled"
        assert (await client.get(rest.rest_url + "/readyz")).status_code == 200


async def test_rest_and_grpc_as_separate_processes(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'jobs.db'}"
    service = launch(["grpc", "--dev", "--grpc-port", "0", "--database", database], grpc=True, rest=False)
    try:
        bridge = launch(
            ["rest", "--dev", "--rest-port", "0", "--grpc-target", service.grpc_address], grpc=False, rest=True
        )
        try:
            await _create_get_cancel_over_rest(bridge)
        finally:
            bridge_output = await asyncio.to_thread(stop, bridge)
        assert bridge.process.returncode == 0, bridge_output
    finally:
        service_output = await asyncio.to_thread(stop, service)
    assert service.process.returncode == 0, service_output
    assert "activity=cli-activity request=cli-request" in service_output


async def test_serve_with_the_bridge_over_real_grpc(tmp_path: Path) -> None:
    serve = _start(tmp_path, "--bridge-channel", "grpc")
    try:
        await _create_get_cancel_over_rest(serve)
    finally:
        output = await asyncio.to_thread(stop, serve)
    assert f"JobService at {serve.grpc_address}" in output


async def _create_running(serve: Serve, body: dict[str, object]) -> str:
    """Create a job over REST and wait until it is InProgress; returns its id."""
    job = str(uuid.uuid4())
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(_job_url(serve, job), json=body, headers=HEADERS)
        assert response.status_code == 202

        async def running() -> bool:
            state = (await client.get(_job_url(serve, job), headers=HEADERS)).json()
            return bool(state["status"] == "InProgress")

        await eventually(running, within=10, what=f"job {job} InProgress")
    return job


async def test_a_running_job_stopped_by_shutdown_is_failed_retriable_after_restart(tmp_path: Path) -> None:
    first = _start(tmp_path, "--shutdown-grace", "0.5")
    job = await _create_running(first, {"invokeType": "Manual", "creationPayload": {"durationSeconds": 60}})
    output = await asyncio.to_thread(stop, first)
    assert first.process.returncode == 0, output

    second = _start(tmp_path)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            state = (await client.get(_job_url(second, job), headers=HEADERS)).json()
        assert state["status"] == "Failed"
        assert state["errorDetails"]["errorCode"] == "JobInterrupted"
        assert state["errorDetails"]["isPermanent"] is False
    finally:
        await asyncio.to_thread(stop, second)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["serve", "--dev", "--cancel-wait", "soon"], "--cancel-wait: must be a number of seconds"),
        (["serve", "--dev", "--grpc-port", "70000"], "--grpc-port: must be from 0 to 65535"),
        (["serve", "--dev", "--rest-host", "0.0.0.0"], "--dev refuses --rest-host 0.0.0.0"),
        (
            ["serve", "--dev", "--database", "mysql://x"],
            "--database: must be sqlite:///path/to/file.db or postgresql://",
        ),
        (["worker", "--database", "sqlite:///x.db"], "a worker takes its jobs from PostgreSQL"),
        (
            ["migrate", "--database", "postgresql://postgres@127.0.0.1:1/x"],
            "PostgreSQL at 127.0.0.1:1/x: connection failed",
        ),
        (["migrate", "--database", "postgresql://a b"], "PostgreSQL URL: unexpected spaces"),
        (["serve", "--dev", "--jobs", "no_such_module:registry"], "cannot import 'no_such_module'"),
        (["serve", "--grpc-port", "0", "--rest-port", "0"], "--auth-audience"),
        (["rest", "--auth-audience", "api://x"], "--auth-publisher-tenant-id"),
        (
            ["serve", "--auth-audience", "api://x", "--auth-publisher-tenant-id", "contoso", "--rest-port", "0"],
            "authentication: the publisher tenant id must be a GUID, not 'contoso'",
        ),
        (
            ["rest", "--auth-audience", "api://x", "--auth-publisher-tenant-id", TENANT, "--auth-jwks-file", "no.json"],
            "authentication: JWKS file no.json: No such file or directory",
        ),
        (["serve", "--dev", "--log-level", "loud"], "--log-level: must be one of DEBUG, INFO, WARNING, ERROR"),
        (["rest", "--dev", "--grpc-target", " "], "--grpc-target: must be host:port"),
        (["serve", "--dev", "--rest-base-path", "work load"], "--rest-base-path: must be a URL path"),
        (["serve", "--dev", "--request-timeout", "nan"], "--request-timeout: must be a number of seconds"),
        (["serve", "--dev", "--lease-seconds", "inf"], "--lease-seconds: must be a number of seconds"),
        (["serve", "--dev", "--lease-seconds", "1e16"], "--lease-seconds: must be at most 1000000"),
        (["serve", "--dev", "--database", "sqlite:///"], "--database: sqlite:/// needs a file path"),
        (["serve", "--dev", "--database", "sqlite:///  "], "--database: sqlite:/// needs a file path"),
    ],
)
def test_bad_configuration_is_one_line_and_exit_2(tmp_path: Path, args: list[str], says: str) -> None:
    done = subprocess.run(
        command(*args), capture_output=True, text=True, timeout=STARTUP_SECONDS, env=clean_env(), cwd=tmp_path
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.strip() and "DEV MODE" not in line]
    assert len(errors) == 1, done.stderr
    assert says in errors[0]
    assert "Traceback" not in done.stderr


def test_environment_variables_set_options(tmp_path: Path) -> None:
    done = subprocess.run(
        command("serve", "--dev"),
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
        env={**clean_env(), "FABRIC_JOBS_CANCEL_GRACE": "never"},
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "--cancel-grace: must be a number of seconds, not 'never' [env FABRIC_JOBS_CANCEL_GRACE]" in done.stderr


def test_help_explains_every_option() -> None:
    done = subprocess.run(command("serve", "--help"), capture_output=True, text=True, timeout=STARTUP_SECONDS)
    assert done.returncode == 0
    for option in ("--grpc-port", "--rest-port", "--database", "--jobs", "--cancel-wait", "--cancel-grace", "--dev"):
        assert option in done.stdout
    assert "FABRIC_JOBS_CANCEL_WAIT" in done.stdout


async def test_accepted_connections_have_nagle_off() -> None:
    from fabric_jobs.cli.run import listen_socket

    sock = listen_socket("127.0.0.1", 0, "--rest-port")
    accepted: asyncio.Queue[int] = asyncio.Queue()

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.put_nowait(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_connect, sock=sock)
    async with server:
        _, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        nodelay = await asyncio.wait_for(accepted.get(), 10)
        writer.close()
        await writer.wait_closed()
    assert nodelay != 0, "without TCP_NODELAY a response written in two parts waits ~40 ms for a delayed ACK"


BLOCKING_JOBS = """
import time

from fabric_jobs import JobRegistry

registry = JobRegistry()


@registry.job("Contoso.FinanceAnalytics.Forecast", "calculateForecast")
def blocked_in_c(ctx):
    time.sleep(3600)
"""


async def test_sigterm_does_not_wait_for_a_handler_thread_blocked_in_c(tmp_path: Path) -> None:
    (tmp_path / "blocking_jobs.py").write_text(BLOCKING_JOBS)
    first = _start(tmp_path, "--jobs", "blocking_jobs:registry", "--shutdown-grace", "0.2", cwd=tmp_path)
    job = await _create_running(first, {"invokeType": "Manual"})
    output = await asyncio.to_thread(stop, first)
    assert first.process.returncode == 0, output
    assert "handler thread(s) still blocked" in output

    second = _start(tmp_path, "--jobs", "blocking_jobs:registry", cwd=tmp_path)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            state = (await client.get(_job_url(second, job), headers=HEADERS)).json()
        assert state["status"] == "Failed"
        assert state["errorDetails"]["errorCode"] == "JobExecutorLost"
    finally:
        await asyncio.to_thread(stop, second)


def test_a_jwks_file_without_an_rsa_signing_key_is_one_line_and_exit_2(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]}')
    done = subprocess.run(
        command(
            "serve",
            "--auth-audience=api://x",
            f"--auth-publisher-tenant-id={uuid.uuid4()}",
            f"--auth-jwks-file={jwks}",
            "--rest-port=0",
            "--grpc-port=0",
        ),
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
        env=clean_env(),
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"fabric-jobs serve: error: authentication: JWKS file {jwks}: it holds no RSA signing key"
    ]


def test_a_database_whose_schema_is_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    database = tmp_path / "jobs.db"
    assert subprocess.run(command("migrate", f"--database=sqlite:///{database}"), env=clean_env()).returncode == 0
    with sqlite3.connect(database) as connection:
        connection.execute("INSERT INTO schema_migrations (version, applied_at_ms) VALUES (9999, 0)")
    done = subprocess.run(
        command("serve", "--dev", f"--database=sqlite:///{database}", "--rest-port=0", "--grpc-port=0"),
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
        env=clean_env(),
        cwd=tmp_path,
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.strip() and "DEV MODE" not in line]
    assert len(errors) == 1, done.stderr
    assert "newer than this fabric-jobs" in errors[0]
