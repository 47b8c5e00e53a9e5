"""Jobs acting for their user on PostgreSQL: grpc and rest replicas, procrastinate workers, authentication on.

A job created while no worker runs starts after its assertion expired and still gets tokens; a worker killed
while a job holds a credential leaves no credential behind (the job ends Failed, retriable, in the same
transaction), and the replacement worker gets tokens for Fabric's retry. No secret in any output or the dump."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psycopg

from tests.conftest import POLL_INTERVAL
from tests.entra import EntraStandIn
from tests.on_behalf_of.acting_jobs import FABRIC, ITEM_TYPE, STORAGE
from tests.on_behalf_of.stack import JOBS, WAIT_SECONDS, Deployment, leaks
from tests.on_behalf_of.test_serve import EXPECTED_CALLER, TWO_SCOPES, report
from tests.processes import Processes, Serve, launch, stop

WORKER_STARTED = "fabric-jobs: worker started"


def credentials_of(url: str, job_instance_id: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM job_credentials WHERE job_instance_id = %s", (job_instance_id,)
        ).fetchone()
    assert row is not None
    count: int = row[0]
    return count


def test_late_starts_and_killed_workers_on_postgresql(
    postgres_url: str, deployment: Deployment, processes: Processes, entra: EntraStandIn
) -> None:
    out = deployment.directory
    common = [f"--database={postgres_url}", f"--jobs={JOBS}", "--lease-seconds=1", "--log-level=DEBUG"]
    common += ["--log-format=json"]
    env, cwd = deployment.env(), Path.cwd()
    grpc = processes.track(
        launch(["grpc", "--grpc-port=0", *common, *deployment.entra_options()], grpc=True, env=env, cwd=cwd)
    )
    rest_args = ["rest", "--rest-port=0", f"--grpc-target={grpc.grpc_address}", *deployment.auth_options()]
    rest = processes.track(launch(rest_args, rest=True, env=env, cwd=cwd))
    url = rest.rest_url

    def start_worker() -> Serve:
        args = ["worker", *common, *deployment.entra_options()]
        return processes.track(launch(args, started=WORKER_STARTED, env=env, cwd=cwd))

    late = deployment.create(url, TWO_SCOPES, report=str(out / "late.json"))
    late_refresh_token = entra.issued_refresh_tokens[-1]
    entra.expire_assertions()
    assert deployment.state(url, TWO_SCOPES, late)["status"] == "NotStarted"
    first_worker = start_worker()
    assert deployment.wait_for(url, TWO_SCOPES, late)["status"] == "Completed"
    got = report(out / "late.json")
    assert got["caller"] == EXPECTED_CALLER
    assert set(got["tokens"]) == {STORAGE, FABRIC}
    assert entra.token_requests()[-1]["refresh_token"] == late_refresh_token
    assert credentials_of(postgres_url, late) == 0

    never = str(out / "never")
    refreshes = len(entra.token_requests("refresh_token"))
    doomed = deployment.create(url, TWO_SCOPES, report=str(out / "doomed.json"), wait_for=never, token_first=True)
    deployment.wait_for(url, TWO_SCOPES, doomed, ("InProgress",))
    deadline = time.monotonic() + WAIT_SECONDS
    while len(entra.token_requests("refresh_token")) == refreshes:  # the handler got its token, then waits
        assert time.monotonic() < deadline, "the handler asked for no token"
        time.sleep(POLL_INTERVAL)
    assert credentials_of(postgres_url, doomed) == 1
    first_worker.process.kill()
    second_worker = start_worker()
    lost = deployment.wait_for(url, TWO_SCOPES, doomed)
    assert (lost["status"], lost["errorDetails"]["errorCode"], lost["errorDetails"]["isPermanent"]) == (
        "Failed",
        "JobExecutorLost",
        False,
    )
    assert credentials_of(postgres_url, doomed) == 0

    retry = deployment.create(url, TWO_SCOPES, report=str(out / "retry.json"))
    assert deployment.wait_for(url, TWO_SCOPES, retry)["status"] == "Completed"
    assert set(report(out / "retry.json")["tokens"].values()) <= set(entra.issued_access_tokens)

    dump = subprocess.run(
        ["pg_dump", "--data-only", postgres_url], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert ITEM_TYPE in dump
    texts: dict[str, str | bytes] = {"the database dump": dump}
    for process in (second_worker, rest, grpc):
        stop(process)
    for process in (first_worker, second_worker, rest, grpc):
        texts[f"the output of {process.name} ({process.process.pid})"] = process.text()
    assert leaks(deployment.secrets(), texts) == []
