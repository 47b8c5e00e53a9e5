"""Real `fabric-jobs` processes for tests: launched, their printed addresses read, readiness polled with a
deadline, their output drained, stopped with SIGTERM (or killed)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fabric_jobs.server.app import SERVICE_NAME
from tests.harness import eventually_blocking

STARTUP_SECONDS = 30
NOTEWORTHY = re.compile(r" (WARNING|ERROR|CRITICAL) |Traceback|Error")
"""The lines of a process's output that pytest shows when a test with processes fails."""
REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
"""The working directory in which `--jobs tests.…:registry` is importable."""


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "fabric_jobs.cli", *args]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without FABRIC_JOBS_* options, plus `extra`."""
    return {key: value for key, value in os.environ.items() if not key.startswith("FABRIC_JOBS_")} | extra


class Serve:
    """A launched `fabric-jobs` process, the addresses it printed and every line of its output so far."""

    def __init__(self, name: str, process: subprocess.Popen[str], grpc_address: str, rest_url: str) -> None:
        self.name = name
        """The command: serve, grpc, rest, worker or migrate."""
        self.process = process
        self.grpc_address = grpc_address
        self.rest_url = rest_url
        self.output: list[str] = []
        self.reader = threading.Thread()

    def text(self) -> str:
        return "".join(self.output)


def launch(
    args: list[str],
    *,
    grpc: bool = False,
    rest: bool = False,
    started: str | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    grpc_credentials: grpc.ChannelCredentials | None = None,
) -> Serve:
    """Run `fabric-jobs ARGS` and wait until it is ready: it printed its gRPC address (`grpc`), its REST URL
    (`rest`) and the line `started` (each if asked), and then answers health checks (over TLS with
    `grpc_credentials`)."""
    assert grpc or rest or started, "nothing to wait for"
    process = subprocess.Popen(
        command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean_env() if env is None else dict(env),
        cwd=cwd,
    )
    assert process.stdout is not None
    lines: list[str] = []
    grpc_address = rest_url = ""
    seen_started = started is None
    for line in process.stdout:
        lines.append(line)
        if match := re.match(r"fabric-jobs: gRPC JobService on (\S+)", line):
            grpc_address = match.group(1)
        if match := re.match(r"fabric-jobs: REST bridge on (http://\S+)", line):
            rest_url = match.group(1)
        seen_started = seen_started or (started is not None and started in line)
        if bool(grpc_address) == grpc and bool(rest_url) == rest and seen_started:
            break
    else:
        process.wait(timeout=STARTUP_SECONDS)
        process.stdout.close()
        pytest.fail(f"fabric-jobs {args[0]} did not start:\n" + "".join(lines))
    serve = Serve(args[0], process, grpc_address, rest_url)
    serve.output = lines
    serve.reader = threading.Thread(target=_drain, args=(process, lines), daemon=True)
    serve.reader.start()
    if grpc or rest:
        _wait_until_ready(serve, grpc_credentials)
    return serve


def _wait_until_ready(serve: Serve, credentials: grpc.ChannelCredentials | None) -> None:
    """Poll the bridge's /readyz, or the JobService's gRPC health when there is no bridge, with a deadline."""

    def ready() -> bool:
        if serve.process.poll() is not None:
            pytest.fail(f"fabric-jobs at {serve.rest_url or serve.grpc_address} stopped at start:\n" + serve.text())
        return _ready(serve, credentials)

    try:
        eventually_blocking(ready, within=STARTUP_SECONDS, what="fabric-jobs becoming ready")
    except AssertionError as exc:
        pytest.fail(f"{exc}:\n{serve.text()}")


def _ready(serve: Serve, credentials: grpc.ChannelCredentials | None) -> bool:
    if serve.rest_url:
        try:
            return httpx.get(serve.rest_url + "/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False
    request = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
    channel = (
        grpc.insecure_channel(serve.grpc_address)
        if credentials is None
        else grpc.secure_channel(serve.grpc_address, credentials)
    )
    with channel:
        try:
            status = health_pb2_grpc.HealthStub(channel).Check(request, timeout=1).status
        except grpc.RpcError:
            return False
    return bool(status == health_pb2.HealthCheckResponse.SERVING)


def _drain(process: subprocess.Popen[str], lines: list[str]) -> None:
    """Keep reading the server's output, so that its logging never blocks on a full pipe."""
    assert process.stdout is not None
    with process.stdout:
        lines.extend(process.stdout)


def stop(serve: Serve, sig: signal.Signals = signal.SIGTERM) -> str:
    """Send `sig` (SIGTERM: stop gracefully), wait for the exit; its whole output."""
    serve.process.send_signal(sig)
    try:
        serve.process.wait(timeout=STARTUP_SECONDS)
    except subprocess.TimeoutExpired:
        serve.process.kill()
        serve.process.wait()
        raise
    finally:
        serve.reader.join(timeout=STARTUP_SECONDS)
    return serve.text()


def kill_if_running(serve: Serve) -> None:
    if serve.process.poll() is None:
        serve.process.kill()
        serve.process.wait()
    serve.reader.join(timeout=STARTUP_SECONDS)


class Processes:
    """The processes a test launched; leaving the `with` block kills every one still running."""

    def __init__(self) -> None:
        self.launched: list[Serve] = []

    def track(self, serve: Serve) -> Serve:
        self.launched.append(serve)
        return serve

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for serve in reversed(self.launched):
            kill_if_running(serve)
        for serve in self.launched:
            print(f"--- fabric-jobs {serve.name} exited {serve.process.returncode}; its warnings and errors:")
            print("".join(line for line in serve.output if NOTEWORTHY.search(line)), end="")
