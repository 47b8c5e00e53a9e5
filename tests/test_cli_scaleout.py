"""The scale-out commands as a user runs them, on the machine's PostgreSQL: migrate, grpc, worker and serve."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator

import psycopg
import pytest

from fabric_jobs import demo
from fabric_jobs.server.store.postgresql import MIGRATIONS
from tests.processes import STARTUP_SECONDS, Processes, clean_env, command, launch, stop
from tests.rest_bridge.client import Bridge, JobRef, client_at

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/fabric_jobs"
PROMPT_STOP_SECONDS = 5.0
"""A worker with nothing to do stops within this long of SIGTERM."""


@pytest.fixture
def processes() -> Iterator[Processes]:
    with Processes() as running:
        yield running


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=STARTUP_SECONDS, env=clean_env())


def applied_migrations(database: str) -> dict[int, int]:
    """schema_migrations: version → applied_at_ms."""
    with psycopg.connect(database) as connection:
        return dict(connection.execute("SELECT version, applied_at_ms FROM schema_migrations").fetchall())


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a command that refused to start printed on stderr."""
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip() and "DEV MODE" not in line]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def test_migrate_twice_and_two_at_once_leave_the_schema_complete(unmigrated_postgres_url: str) -> None:
    migrate = command("migrate", "--database", unmigrated_postgres_url)
    at_once = [subprocess.Popen(migrate, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    for process in at_once:
        out, err = process.communicate(timeout=STARTUP_SECONDS)
        assert process.returncode == 0, err
        assert "fabric-jobs: database schema is up to date" in out
    applied = applied_migrations(unmigrated_postgres_url)
    assert set(applied) == {migration.version for migration in MIGRATIONS}

    again = run("migrate", "--database", unmigrated_postgres_url)
    assert again.returncode == 0, again.stderr
    assert applied_migrations(unmigrated_postgres_url) == applied, "a second migrate applied something again"


DEMO = ["--jobs", "fabric_jobs.demo:registry"]
SERVICES = {
    "grpc": ["--grpc-port", "0", *DEMO],
    "worker": DEMO,
    "serve": ["--dev", "--grpc-port", "0", "--rest-port", "0", *DEMO],
}


@pytest.mark.parametrize("command_name", list(SERVICES))
def test_a_service_refuses_an_unmigrated_database_naming_migrate(
    unmigrated_postgres_url: str, command_name: str
) -> None:
    line = error_line(run(command_name, "--database", unmigrated_postgres_url, *SERVICES[command_name]))
    assert line.startswith(f"fabric-jobs {command_name}: error: --database {unmigrated_postgres_url}: ")
    assert "not migrated: run `fabric-jobs migrate --database URL`" in line


@pytest.mark.parametrize("command_name", list(SERVICES))
def test_an_unreachable_server_is_one_line_and_exit_2(command_name: str) -> None:
    line = error_line(run(command_name, "--database", UNREACHABLE, *SERVICES[command_name]))
    assert line.startswith(f"fabric-jobs {command_name}: error: --database {UNREACHABLE}: ")
    assert "PostgreSQL at 127.0.0.1:1/fabric_jobs: connection failed" in line


async def test_serve_on_postgresql_runs_a_job_end_to_end_and_stops_on_sigterm(
    postgres_url: str, processes: Processes
) -> None:
    args = ["serve", "--dev", "--grpc-port", "0", "--rest-port", "0", "--database", postgres_url, *DEMO]
    serve = processes.track(launch([*args, "--shutdown-grace", "1"], grpc=True, rest=True))
    job = JobRef(item_type=demo.ITEM_TYPE, job_type=demo.JOB_TYPE)
    async with client_at(serve.rest_url) as http:
        bridge = Bridge(http)
        body = {"invokeType": "Manual", "creationPayload": {"durationSeconds": 60}}
        assert (await bridge.create(job, body)).status_code == 202
        running = await bridge.wait_for(job, "InProgress")
        assert running["startTimeUtc"].endswith("Z")
        cancelled = await bridge.cancel(job)
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "Cancelled"
        assert (await bridge.state(job))["status"] == "Cancelled"

    output = await asyncio.to_thread(stop, serve)
    assert serve.process.returncode == 0, output
    assert "JobService stopped" in output


def test_a_worker_without_jobs_stops_promptly_on_sigterm(postgres_url: str, processes: Processes) -> None:
    worker = processes.track(
        launch(["worker", "--database", postgres_url, *DEMO], started="fabric-jobs: worker started")
    )
    asked = time.monotonic()
    output = stop(worker)
    took = time.monotonic() - asked
    assert worker.process.returncode == 0, output
    assert took < PROMPT_STOP_SECONDS, f"the worker took {took:.1f}s to stop:\n{output}"
    print(f"worker stopped {took:.2f}s after SIGTERM")


@pytest.mark.parametrize(
    ("command_name", "says"),
    [
        ("migrate", ["Apply pending schema migrations", "safe to run twice, or two at once", "postgresql://"]),
        ("worker", ["run their handlers", "any number of workers", "--concurrency", "--shutdown-grace"]),
    ],
)
def test_help_says_what_the_scaleout_commands_do(command_name: str, says: list[str]) -> None:
    done = run(command_name, "--help")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    for phrase in says:
        assert phrase in text
