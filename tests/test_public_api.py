"""The API for workload authors: `from fabric_jobs import ...`, typed, loaded lazily, shipped with py.typed."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

import fabric_jobs

ROOT = Path(__file__).resolve().parent.parent

AUTHOR = """
from collections.abc import Mapping
from typing import Any

from fabric_jobs import (
    CancellationToken,
    CancelReason,
    ErrorSource,
    ExtendedInfo,
    InvalidPayload,
    InvokeType,
    JobCancelled,
    JobContext,
    JobFailed,
    JobKey,
    JobRegistry,
)

registry = JobRegistry()


def validate(payload: Mapping[str, Any]) -> None:
    if not isinstance(payload.get("rows"), int):
        raise InvalidPayload("rows", "must be an integer")


@registry.job("Contoso.FinanceAnalytics.Forecast", "calculateForecast", validate=validate)
async def calculate(ctx: JobContext) -> None:
    key: JobKey = ctx.key
    token: CancellationToken = ctx.cancellation
    if ctx.invoke_type is InvokeType.SCHEDULED:
        await token.wait()
    if token.reason is CancelReason.SHUTDOWN:
        token.raise_if_cancelled()
    raise JobFailed(
        f"{key.job_instance_id}: no rows",
        error_code="NoRows",
        source=ErrorSource.USER,
        more_details=(ExtendedInfo("Inner", "why"),),
    )


def export(ctx: JobContext) -> None:
    if ctx.cancellation.wait_blocking(1.0):
        raise JobCancelled("stopped")


registry.add("Contoso.FinanceAnalytics.Forecast", "export", export)
"""

MISTAKES = """
from fabric_jobs import JobContext, JobFailed, JobRegisty


def handler(ctx: JobContext) -> None:
    ctx.payload["rows"] = 1
    raise JobFailed("x", error_code=3)
"""


CLIENT_USER = """
from fabric_jobs.client import (
    InvalidRequest,
    JobInstanceNotFound,
    JobKey,
    JobsClient,
    JobState,
    JobStatus,
    RetryPolicy,
    SyncJobsClient,
    Tls,
)


async def run(key: JobKey) -> JobStatus:
    tls = Tls.from_files(ca="ca.pem", cert="client.pem", key="client.key")
    async with JobsClient.connect("dns:///jobs:50051", tls=tls, retry=RetryPolicy(max_attempts=3)) as jobs:
        created = await jobs.create(key, payload={"rows": 5})
        assert created.created
        try:
            state: JobState = await jobs.wait(key, timeout=60)
        except JobInstanceNotFound as exc:
            print(exc.details.error_code, exc.details.is_permanent)
            raise
        except InvalidRequest as exc:
            print([violation.field for violation in exc.field_violations])
            raise
        async for change in jobs.watch(key):
            print(change.status, change.start_time)
        return state.status


def script(key: JobKey) -> None:
    with SyncJobsClient.connect("ipv4:10.0.0.1:50051,10.0.0.2:50051") as jobs:
        print(jobs.cancel(key).end_time)
"""

CLIENT_MISTAKES = """
from fabric_jobs.client import JobKey, JobsClient


async def wrong(jobs: JobsClient, key: JobKey) -> None:
    await jobs.create("not a key")
    state = await jobs.get(key)
    state.cancel_requested = True
    await jobs.wait(key, timeout="60")
"""


def test_every_public_name_is_the_internal_object() -> None:
    homes = {
        "fabric_jobs.errors": ["ErrorSource", "ExtendedInfo"],
        "fabric_jobs.identity": ["Caller", "TokenUnavailable"],
        "fabric_jobs.cancellation": ["CancellationToken", "CancelReason", "JobCancelled"],
        "fabric_jobs.keys": ["JobKey"],
        "fabric_jobs.status": ["InvokeType"],
        "fabric_jobs.registry": [
            "Handler",
            "InvalidPayload",
            "JobContext",
            "JobFailed",
            "JobRegistry",
            "PayloadValidator",
        ],
    }
    exported = {name for names in homes.values() for name in names}
    assert set(fabric_jobs.__all__) == exported | {"__version__"}
    assert exported <= set(dir(fabric_jobs))
    for module, names in homes.items():
        for name in names:
            assert getattr(fabric_jobs, name) is getattr(importlib.import_module(module), name)
    with pytest.raises(ImportError, match="JobRegisty"):
        exec("from fabric_jobs import JobRegisty")


def _fresh_python(code: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.split()


def test_the_bridge_loads_no_jobservice_and_a_handler_module_no_grpc() -> None:
    """A `rest` process imports the package, never the JobService; handler code loads neither grpc nor the server."""
    watched = ("grpc", "fabric_jobs.server", "fabric_jobs.server.app")
    report = f"import sys; print(*sorted(m for m in {watched!r} if m in sys.modules))"
    assert "fabric_jobs.server" not in _fresh_python(f"import fabric_jobs.rest_bridge.app; {report}")
    assert _fresh_python(f"from fabric_jobs import JobContext, JobFailed, JobRegistry; {report}") == []


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as a wheel installs it: built from a copy of the sources, unpacked into a directory."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.db", "*.db-*")
    shutil.copytree(ROOT / "fabric_jobs", source / "fabric_jobs", ignore=ignore)
    build = "from setuptools import build_meta; print(build_meta.build_wheel('../dist'))"
    wheel = subprocess.run(
        [sys.executable, "-c", build], cwd=source, capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()[-1]
    site = work / "site"
    with zipfile.ZipFile(work / "dist" / wheel) as archive:
        archive.extractall(site)
    return site


def test_the_wheel_ships_py_typed_the_plugin_and_its_entry_point(installed: Path) -> None:
    assert (installed / "fabric_jobs" / "py.typed").is_file()
    assert (installed / "fabric_jobs" / "testing" / "plugin.py").is_file()
    (entry_points,) = installed.glob("fabric_jobs-*.dist-info/entry_points.txt")
    assert "[pytest11]\nfabric_jobs = fabric_jobs.testing.plugin" in entry_points.read_text()


def _mypy_strict(installed: Path, work: Path, files: dict[str, str]) -> tuple[str, list[str]]:
    """mypy --strict on `files` (name: text, written into `work`) with the package found only as the installed
    PEP 561 package; it must find errors (exit 1). Its output, and its error lines."""
    for name, text in files.items():
        (work / name).write_text(text)
    command = [sys.executable, "-m", "mypy", "--config-file=", "--strict", "--no-incremental", *files]
    environment = {**os.environ, "PYTHONPATH": str(installed)}
    done = subprocess.run(command, cwd=work, env=environment, capture_output=True, text=True, timeout=60)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    return out, [line for line in out.splitlines() if ": error:" in line]


def test_mypy_strict_checks_an_authors_code_against_the_public_names(installed: Path, tmp_path: Path) -> None:
    """With the package found only as an installed PEP 561 package: correct code passes, mistakes are named."""
    out, errors = _mypy_strict(installed, tmp_path, {"author.py": AUTHOR, "mistakes.py": textwrap.dedent(MISTAKES)})
    assert not [line for line in errors if line.startswith("author.py")], out
    assert any('Module "fabric_jobs" has no attribute "JobRegisty"' in line for line in errors), out
    assert any("Unsupported target for indexed assignment" in line for line in errors), out
    assert any('Argument "error_code" to "JobFailed" has incompatible type "int"' in line for line in errors), out
    assert len(errors) == 3, out


def test_mypy_strict_checks_a_services_use_of_the_client(installed: Path, tmp_path: Path) -> None:
    out, errors = _mypy_strict(installed, tmp_path, {"service.py": CLIENT_USER, "mistakes.py": CLIENT_MISTAKES})
    assert not [line for line in errors if line.startswith("service.py")], out
    assert any('Argument 1 to "create" of "JobsClient" has incompatible type "str"' in line for line in errors), out
    assert any('"cancel_requested" defined in "JobState" is read-only' in line for line in errors), out
    assert any('Argument "timeout" to "wait" of "JobsClient" has incompatible type "str"' in line for line in errors), (
        out
    )
    assert len(errors) == 3, out
