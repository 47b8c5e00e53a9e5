"""The production topology of "Scaling out", each process in its own container from the image, on the host's
network and the machine's PostgreSQL: migrate, two grpc replicas, a worker and the REST bridge over both
replicas, authenticated; a job is created, runs and is cancelled through the bridge."""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from pathlib import Path

import pytest

from fabric_jobs import demo
from tests import tokens
from tests.deploy.containers import (
    AUTH_ENV,
    BUILD_SECONDS,
    Podman,
    env_args,
    free_port,
    round_trip,
    wait_until_ready,
    write_secret,
)

pytestmark = pytest.mark.timeout(BUILD_SECONDS + 180)
JOBS = f"--jobs={demo.__name__}:registry"


async def test_migrate_grpc_worker_and_rest_in_containers_create_run_and_cancel_a_job(
    podman: Podman, unmigrated_postgres_url: str, tmp_path: Path
) -> None:
    database = f"--database={unmigrated_postgres_url}"
    host = ["--network", "host"]
    migrated = podman.run("run", "--rm", *host, podman.image, "migrate", database)
    assert "fabric-jobs: database schema is up to date" in migrated.stdout, migrated.stdout + migrated.stderr

    jwks = write_secret(tmp_path / "jwks.json", json.dumps(tokens.jwks_document()))
    grpc_ports = [free_port(), free_port()]
    rest_port = free_port()
    prefix = f"fabric-jobs-test-{os.getpid()}-{rest_port}"
    with ExitStack() as running:
        for index, port in enumerate(grpc_ports):
            running.enter_context(
                podman.container(
                    *host, podman.image, "grpc", f"--grpc-port={port}", database, JOBS, name=f"{prefix}-grpc-{index}"
                )
            )
        running.enter_context(podman.container(*host, podman.image, "worker", database, JOBS, name=f"{prefix}-worker"))
        targets = ",".join(f"127.0.0.1:{port}" for port in grpc_ports)
        running.enter_context(
            podman.container(
                *host,
                "--volume",
                f"{jwks}:/run/secrets/jwks.json:ro",
                *env_args(AUTH_ENV),
                podman.image,
                "rest",
                f"--rest-port={rest_port}",
                f"--grpc-target=ipv4:{targets}",
                "--auth-jwks-file=/run/secrets/jwks.json",
                name=f"{prefix}-rest",
            )
        )
        rest_url = f"http://127.0.0.1:{rest_port}"
        wait_until_ready(f"{rest_url}/readyz")
        await round_trip(rest_url)
