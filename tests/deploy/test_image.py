"""The Containerfile: hadolint finds nothing in it, and the image it builds runs `fabric-jobs` as its non-root
user, refuses to serve without authentication, serves /readyz, and has neither compilers nor a pip cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fabric_jobs import __version__
from tests.deploy.containers import (
    AUTH_ENV,
    BUILD_SECONDS,
    UID,
    Podman,
    build,
    env_args,
    free_port,
    wait_until_ready,
)
from tests.processes import REPOSITORY_ROOT

CONTAINERFILE = REPOSITORY_ROOT / "Containerfile"
pytestmark = pytest.mark.timeout(BUILD_SECONDS + 120)


def test_hadolint_finds_nothing_in_the_containerfile() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run([str(hadolint), "--no-color", str(CONTAINERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""


def test_docker_finds_the_containerfile_as_dockerfile() -> None:
    dockerfile = REPOSITORY_ROOT / "Dockerfile"
    assert dockerfile.is_symlink()
    assert dockerfile.resolve() == CONTAINERFILE


def test_help_runs_as_the_images_non_root_user(podman: Podman) -> None:
    assert podman.run("image", "inspect", "--format", "{{.Config.User}}", podman.image).stdout.strip() == f"{UID}:{UID}"
    ids = podman.run("run", "--rm", "--entrypoint", "id", podman.image).stdout
    assert ids.startswith(f"uid={UID}(fabric-jobs) gid={UID}(fabric-jobs)"), ids
    done = podman.run("run", "--rm", podman.image, "--help")
    assert done.stdout.startswith("usage: fabric-jobs"), done.stdout
    for command in ("serve", "grpc", "rest", "worker", "migrate"):
        assert command in done.stdout


def test_the_default_command_refuses_to_run_without_authentication(podman: Podman) -> None:
    done = podman.run("run", "--rm", "--no-healthcheck", podman.image, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("fabric-jobs serve: error: authentication needs the workload's audience: ")
    assert "--auth-audience" in line
    assert "--auth-publisher-tenant-id" in line


def test_serve_answers_readyz_and_its_health_check(podman: Podman) -> None:
    port = free_port()
    name = f"fabric-jobs-test-serve-{os.getpid()}-{port}"
    with podman.container("--publish", f"127.0.0.1:{port}:8080", *env_args(AUTH_ENV), podman.image, name=name):
        wait_until_ready(f"http://127.0.0.1:{port}/readyz")
        health = podman.run("healthcheck", "run", name, check=False)
        assert health.returncode == 0, health.stdout + health.stderr


def test_the_image_has_its_labels_and_neither_compilers_nor_a_pip_cache(podman: Podman) -> None:
    labels = podman.run("image", "inspect", "--format", "{{json .Config.Labels}}", podman.image).stdout
    for label in ("title", "description", "revision", "licenses", "base.name"):
        assert f'"org.opencontainers.image.{label}"' in labels
    assert f'"org.opencontainers.image.version":"{__version__}"' in labels
    script = (
        "for tool in gcc cc c++ make ld; do command -v $tool && exit 1; done; "
        "find / -xdev -type d -path '*/.cache/pip' -print"
    )
    done = podman.run("run", "--rm", "--user", "0", "--entrypoint", "sh", podman.image, "-c", script, check=False)
    assert (done.returncode, done.stdout) == (0, ""), done.stdout + done.stderr


def test_the_derived_example_image_serves_the_example_workloads_job_types(podman: Podman) -> None:
    example = build("--tag", "localhost/fabric-jobs-forecast:test", "--target", "forecast-example")["image"]
    done = podman.run("run", "--rm", example, "manifest", "--jobs", "forecast_workload.jobs:registry")
    assert 'Name="Contoso.Forecasting.SalesModel.Forecast"' in done.stdout, done.stdout
    assert podman.run("image", "inspect", "--format", "{{.Config.User}}", example).stdout.strip() == f"{UID}:{UID}"
