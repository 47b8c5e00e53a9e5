"""deploy/compose.yaml with podman-compose: it comes up (PostgreSQL, migrate, two grpc replicas over TLS, two
workers, the REST bridge), passes the round trip through the bridge, and goes down.

No image registry is reachable here, so PostgreSQL is a stand-in built from Debian's packages
(tests/containers/postgres) and the bridge checks tokens against a local JWKS, added by an override file:
the compose file itself is used as a team would use it. This machine has no systemd, through which podman
schedules health checks, so the test runs PostgreSQL's health check while `up` waits for it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests import tokens
from tests.deploy.containers import (
    AUTH_ENV,
    BUILD_SECONDS,
    COMMAND_SECONDS,
    POSTGRES_IMAGE,
    READY_SECONDS,
    Podman,
    build,
    free_port,
    round_trip,
    wait_until_ready,
    write_secret,
)
from tests.processes import REPOSITORY_ROOT
from tests.tls import make_certificates

COMPOSE_FILE = REPOSITORY_ROOT / "deploy" / "compose.yaml"
POSTGRES_CONTAINERFILE = REPOSITORY_ROOT / "tests" / "containers" / "postgres" / "Containerfile"
UP_SECONDS = 240
pytestmark = pytest.mark.timeout(2 * BUILD_SECONDS + UP_SECONDS + 120)


def write_secrets(directory: Path) -> None:
    """The secret files compose.yaml names, as a team makes them: readable by the image's user only."""
    password = uuid.uuid4().hex
    write_secret(directory / "postgres-password", password, mode=0o444)
    write_secret(directory / "pgpass", f"postgres:5432:fabric_jobs:fabric:{password}\n", mode=0o600)
    made = directory.parent / "tls"
    made.mkdir()
    certificates = make_certificates(made, server_names=("grpc",))
    write_secret(directory / "grpc-ca.pem", certificates.ca.read_bytes(), mode=0o444)
    write_secret(directory / "grpc.pem", certificates.server.cert.read_bytes(), mode=0o444)
    write_secret(directory / "grpc.key", certificates.server.key.read_bytes())
    write_secret(directory / "jwks.json", json.dumps(tokens.jwks_document()), mode=0o444)


def write_override(path: Path) -> Path:
    """The test's additions: the bridge trusts the JWKS of tests/tokens.py (instead of Entra's keys)."""
    override = {
        "services": {
            "rest": {
                "environment": {"FABRIC_JOBS_AUTH_JWKS_FILE": "/run/secrets/jwks.json"},
                "secrets": ["jwks.json"],
            }
        },
        "secrets": {"jwks.json": {"file": str(path.parent / "secrets" / "jwks.json")}},
    }
    path.write_text(yaml.safe_dump(override))
    return path


def _drain(process: subprocess.Popen[str], lines: list[str]) -> None:
    assert process.stdout is not None
    with process.stdout:
        lines.extend(process.stdout)


class Compose:
    def __init__(self, podman: Podman, project: str, files: list[Path], env: dict[str, str]) -> None:
        self.podman = podman
        self.project = project
        self.files = files
        self.env = env

    def command(self, *args: str) -> list[str]:
        compose = str(Path(sys.executable).parent / "podman-compose")
        files = [argument for path in self.files for argument in ("--file", str(path))]
        return [compose, "--project-name", self.project, *files, *args]

    def run(self, *args: str, timeout: float = COMMAND_SECONDS) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), capture_output=True, text=True, timeout=timeout, env=self.env)

    def up(self) -> None:
        """`up --detach`, running PostgreSQL's health check (podman's timers need systemd) until `up` returns."""
        up = subprocess.Popen(
            self.command("up", "--detach"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env
        )
        output: list[str] = []
        reader = threading.Thread(target=_drain, args=(up, output), daemon=True)
        reader.start()
        deadline = time.monotonic() + UP_SECONDS
        postgres = f"{self.project}_postgres_1"
        while up.poll() is None and time.monotonic() < deadline:
            self.podman.run("healthcheck", "run", postgres, check=False)
            time.sleep(1)
        if up.poll() is None:
            up.kill()
        up.wait()
        reader.join(timeout=5)
        assert up.returncode == 0, "podman-compose up failed:\n" + "".join(output)

    def containers(self, *, all: bool = False) -> list[str]:
        """Names of the project's containers (running ones unless `all`), without the project's prefix."""
        args = ["ps", "--format", "{{.Names}}", "--filter", f"label=io.podman.compose.project={self.project}"]
        names = self.podman.run(*args, *(["--all"] if all else [])).stdout.split()
        return sorted(name.removeprefix(f"{self.project}_") for name in names)

    def logs(self) -> str:
        done = self.run("logs", timeout=COMMAND_SECONDS)
        return done.stdout + done.stderr


@pytest.fixture
def compose(podman: Podman, tmp_path: Path) -> Iterator[Compose]:
    if shutil.which("podman-compose", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("podman-compose is a dev dependency: pip install -e '.[dev]'")
    postgres = build("--tag", POSTGRES_IMAGE, "--file", str(POSTGRES_CONTAINERFILE))
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    write_secrets(secrets)
    env = {
        **podman.env,
        **AUTH_ENV,
        "FABRIC_JOBS_IMAGE": podman.image,
        "POSTGRES_IMAGE": postgres["image"],
        "FABRIC_JOBS_SECRETS": str(secrets),
        "FABRIC_JOBS_REST_PORT": str(free_port()),
    }
    project = f"fabric-jobs-test-{uuid.uuid4().hex[:8]}"
    running = Compose(podman, project, [COMPOSE_FILE, write_override(tmp_path / "override.yaml")], env)
    try:
        yield running
    finally:
        print(f"--- podman-compose logs:\n{running.logs()}")
        down = running.run("down", "--volumes", "--timeout", "10", timeout=UP_SECONDS)
        assert down.returncode == 0, down.stdout + down.stderr
        assert running.containers(all=True) == [], "containers left after down"


async def test_compose_comes_up_passes_the_round_trip_and_goes_down(compose: Compose) -> None:
    compose.up()
    rest_url = f"http://127.0.0.1:{compose.env['FABRIC_JOBS_REST_PORT']}"
    wait_until_ready(f"{rest_url}/readyz", within=READY_SECONDS)
    await round_trip(rest_url)
    assert compose.containers() == ["grpc_1", "grpc_2", "postgres_1", "rest_1", "worker_1", "worker_2"]
    migrate = f"{compose.project}_migrate_1"
    assert compose.podman.run("inspect", "--format", "{{.State.ExitCode}}", migrate).stdout.strip() == "0"
