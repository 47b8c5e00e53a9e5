"""Containers for the deployment tests: podman as scripts/podman_image.py prepares it, the image it builds, and
the round trip every deployment must pass (create, run and cancel a job through the REST bridge, authenticated).

Where podman is missing the tests skip with the reason, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fabric_jobs import demo
from tests import tokens
from tests.conftest import POLL_INTERVAL
from tests.processes import REPOSITORY_ROOT
from tests.rest_bridge.client import Bridge, JobRef, client_at

SCRIPT = REPOSITORY_ROOT / "scripts" / "podman_image.py"
IMAGE = "localhost/fabric-jobs:test"
POSTGRES_IMAGE = "localhost/fabric-jobs-test-postgres"
BUILD_SECONDS = 900
"""A cold build: the base with mmdebstrap (2-3 minutes on these machines), then the dependencies from PyPI."""
READY_SECONDS = 60
COMMAND_SECONDS = 120
UID = 10001
"""The image's user."""


@dataclass(frozen=True)
class Podman:
    """podman as the script prepared it: CONTAINERS_CONF in `env`, and the images it built."""

    env: dict[str, str]
    image: str

    def run(self, *args: str, timeout: float = COMMAND_SECONDS, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["podman", *args], capture_output=True, text=True, timeout=timeout, env=self.env, check=False
        )
        if check and done.returncode != 0:
            pytest.fail(f"podman {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    @contextmanager
    def container(self, *args: str, name: str) -> Iterator[str]:
        """`podman run --detach --name NAME ARGS`; removed on leaving, its log printed (pytest shows it on failure)."""
        self.run("run", "--detach", "--name", name, *args)
        try:
            yield name
        finally:
            print(f"--- container {name}:\n{self.run('logs', name, check=False).stdout}")
            print(self.run("logs", name, check=False).stderr)
            self.run("rm", "--force", "--time", "5", name, check=False)


def missing_podman(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def build(*args: str) -> dict[str, str]:
    """Run scripts/podman_image.py build ARGS; what it made (image, base_image, containers_conf)."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "build", *args], capture_output=True, text=True, timeout=BUILD_SECONDS
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/podman_image.py build {' '.join(args)} failed:\n{done.stderr}")
    made: dict[str, str] = json.loads(done.stdout)
    return made


def prepared_podman() -> Podman:
    """The image, built by scripts/podman_image.py (the base cached on the machine, the layers in podman's cache)."""
    if shutil.which("podman") is None:
        missing_podman("podman is not installed: python3 scripts/podman_image.py prepare installs it (as root)")
    made = build("--tag", IMAGE)
    return Podman(env={**os.environ, "CONTAINERS_CONF": made["containers_conf"]}, image=made["image"])


def free_port() -> int:
    """A port free on the host now; the container that binds it starts next."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def wait_until_ready(url: str, within: float = READY_SECONDS) -> None:
    """Poll `url` (a /readyz) until it answers 200, with a deadline."""
    deadline = time.monotonic() + within
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text}"
        except httpx.TransportError as exc:
            last = repr(exc)
        time.sleep(POLL_INTERVAL * 10)
    pytest.fail(f"{url} never answered 200 within {within:.0f}s; last: {last}")


AUTH_ENV = {
    "FABRIC_JOBS_AUTH_AUDIENCE": tokens.TEST_AUDIENCE,
    "FABRIC_JOBS_AUTH_PUBLISHER_TENANT_ID": tokens.PUBLISHER_TENANT_ID,
}
"""What the bridge needs to accept the tokens of tests/tokens.py, with their JWKS as --auth-jwks-file."""


def env_args(env: dict[str, str]) -> list[str]:
    return [argument for name, value in env.items() for argument in ("--env", f"{name}={value}")]


def write_secret(path: Path, content: str | bytes, *, mode: int = 0o400) -> Path:
    """A secret file the image's user (uid 10001) can read, as bind mounts pass it: owner and mode kept."""
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    os.chown(path, UID, UID)
    path.chmod(mode)
    return path


async def round_trip(rest_url: str, statuses: Sequence[str] = ("InProgress",), within: float = READY_SECONDS) -> None:
    """Create a demo job through the bridge, wait until it runs, cancel it: the Cancel answers Cancelled."""
    job = JobRef(tenant_id=tokens.CLIENT_TENANT_ID, item_type=demo.ITEM_TYPE, job_type=demo.JOB_TYPE)

    def headers() -> dict[str, str]:
        authorization = tokens.authorization_header(tokens.mint_subject_token(), tokens.mint_app_token())
        return job.headers(Authorization=authorization)

    async with client_at(rest_url) as http:
        bridge = Bridge(http)
        body = {"invokeType": "Manual", "creationPayload": {"durationSeconds": 600}}
        created = await bridge.create(job, body, headers=headers())
        assert created.status_code == 202, created.text
        deadline = time.monotonic() + within
        state: dict[str, str] = {}
        while state.get("status") not in statuses:
            assert time.monotonic() < deadline, f"the job never reached {statuses}; last state {state}"
            response = await bridge.get(job, headers=headers())
            assert response.status_code == 200, response.text
            state = response.json()
            await asyncio.sleep(POLL_INTERVAL * 5)
        cancelled = await bridge.cancel(job, headers=headers())
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "Cancelled", cancelled.text
        final = await bridge.get(job, headers=headers())
        assert final.json()["status"] == "Cancelled", final.text
