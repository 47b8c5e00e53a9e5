"""`fabric-jobs jobs …` as an operator runs it: subprocesses against a live `fabric-jobs serve --dev`."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import eventually_blocking
from tests.processes import Serve, clean_env, command, kill_if_running, launch

WORKSPACE = "e5ef604d-e14f-4a59-9133-75d5a0cb9334"
ITEM = "b14cb7e7-d346-4751-9cfd-8c2767d53111"
ITEM_TYPE = "Contoso.FinanceAnalytics.Forecast"
JOB_TYPE = "calculateForecast"
TENANT_A = "7c1d1a1e-0000-4000-8000-00000000000a"
TENANT_B = "7c1d1a1e-0000-4000-8000-00000000000b"
CLI_SECONDS = 30


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    database = f"sqlite:///{tmp_path_factory.mktemp('jobs') / 'jobs.db'}"
    running = launch(
        ["serve", "--dev", "--grpc-port", "0", "--rest-port", "0", "--database", database, "--cancel-wait", "2"],
        grpc=True,
        rest=True,
    )
    yield running
    kill_if_running(running)


def create(serve: Serve, tenant: str, job_instance_id: str | None = None, seconds: int = 120) -> str:
    job_instance_id = job_instance_id or str(uuid.uuid4())
    reply = httpx.post(
        job_url(serve, job_instance_id),
        headers={"x-ms-client-tenant-id": tenant, "ActivityId": "a", "RequestId": "r"},
        json={"invokeType": "Manual", "creationPayload": {"durationSeconds": seconds}},
    )
    assert reply.status_code == 202, reply.text
    return job_instance_id


def job_url(serve: Serve, job_instance_id: str) -> str:
    return (
        f"{serve.rest_url}/workspaces/{WORKSPACE}/items/{ITEM_TYPE}/{ITEM}/jobTypes/{JOB_TYPE}"
        f"/instances/{job_instance_id}"
    )


def rest_status(serve: Serve, tenant: str, job_instance_id: str) -> str:
    reply = httpx.get(
        job_url(serve, job_instance_id), headers={"x-ms-client-tenant-id": tenant, "ActivityId": "a", "RequestId": "r"}
    )
    status: str = reply.json()["status"]
    return status


def jobs(serve: Serve | None, *args: str) -> subprocess.CompletedProcess[str]:
    target = ["--grpc-target", serve.grpc_address] if serve is not None else []
    return subprocess.run(
        command("jobs", *args, *target), capture_output=True, text=True, env=clean_env(), timeout=CLI_SECONDS
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert (result.returncode, result.stderr) == (0, ""), result
    return result.stdout


def one_line_failure(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


class Lines:
    """The stdout lines of a running subprocess, read by a thread, awaited with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self.stderr = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, within: float = 10.0) -> None:
        eventually_blocking(lambda: any(text in line for line in self.lines), within=within, what=f"a line {text!r}")

    def finish(self) -> int:
        """Wait for the exit; its status (stderr is kept in `stderr`)."""
        assert self.process.stderr is not None
        with self.process.stderr:
            self.stderr = self.process.stderr.read()
        code = self.process.wait(timeout=CLI_SECONDS)
        self._reader.join(timeout=CLI_SECONDS)
        return code


def statuses(lines: list[str]) -> list[str]:
    """The statuses of `watch` lines (time, status, then the progress the demo job reports), repeats left out."""
    seen: list[str] = []
    for line in lines:
        status = line.split("  ")[1]
        if not seen or seen[-1] != status:
            seen.append(status)
    return seen


def watch(serve: Serve, job_instance_id: str) -> Lines:
    process = subprocess.Popen(
        command("jobs", "watch", job_instance_id, "--grpc-target", serve.grpc_address),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    return Lines(process)


def test_list_shows_every_tenant_newest_first_as_a_table_or_one_json_document(serve: Serve) -> None:
    first = create(serve, TENANT_A)
    second = create(serve, TENANT_B)
    third = create(serve, TENANT_A)

    text = ok(jobs(serve, "list"))
    everything = json.loads(ok(jobs(serve, "list", "--json")))
    of_b = json.loads(ok(jobs(serve, "list", "--json", "--tenant", TENANT_B.upper(), "--status", "inprogress")))
    limited = json.loads(ok(jobs(serve, "list", "--json", "--limit", "2", "--item-type", ITEM_TYPE, "--since", "1h")))
    none = ok(jobs(serve, "list", "--status", "Completed,Failed", "--job-type", JOB_TYPE))

    header, *rows = text.splitlines()
    assert header.split() == ["CREATED", "(UTC)", "STATUS", "JOB", "INSTANCE", "JOB", "TYPE", "TENANT"]
    listed = [row.split()[3] for row in rows]
    assert set(listed) >= {first, second, third}
    assert listed.index(third) < listed.index(second) < listed.index(first)
    assert any(third in row and "InProgress" in row and TENANT_A in row for row in rows)
    ids = [job["jobInstanceId"] for job in everything["jobInstances"]]
    assert ids.index(third) < ids.index(second) < ids.index(first)
    assert [job["jobInstanceId"] for job in of_b["jobInstances"]] == [second]
    listed_b = {name: value for name, value in of_b["jobInstances"][0].items() if name != "progress"}  # it moves
    assert listed_b | {"createTimeUtc": "", "startTimeUtc": ""} == {
        "tenantId": TENANT_B,
        "workspaceId": WORKSPACE,
        "itemType": ITEM_TYPE,
        "itemId": ITEM,
        "jobType": JOB_TYPE,
        "jobInstanceId": second,
        "status": "InProgress",
        "invokeType": "Manual",
        "cancelRequested": False,
        "createTimeUtc": "",
        "startTimeUtc": "",
        "caller": {  # --dev: the development identity
            "tenantId": "00000000-0000-0000-0000-000000000000",
            "objectId": "00000000-0000-0000-0000-0000000000de",
            "userPrincipalName": "dev-user@fabric-jobs.invalid",
            "appId": "00000000-0000-0000-0000-000000000000",
        },
    }
    assert len(limited["jobInstances"]) == 2
    assert limited["more"] is True
    assert none == "no job instances\n"


def test_cancel_stops_the_job_watch_sees_it_and_show_tells_its_history(serve: Serve) -> None:
    job = create(serve, TENANT_A)
    watching = watch(serve, job)
    watching.wait_for("InProgress")

    cancelled = ok(jobs(serve, "cancel", job))
    code = watching.finish()
    shown = json.loads(ok(jobs(serve, "show", job, "--json")))
    card = ok(jobs(serve, "show", job))

    assert "Status       Cancelled" in cancelled.splitlines()
    assert rest_status(serve, TENANT_A, job) == "Cancelled"
    assert code == 0
    assert statuses(watching.lines) == ["InProgress", "InProgress (cancelling)", "Cancelled"]
    assert shown["jobInstance"]["status"] == "Cancelled"
    assert [(step["status"], step["cancelRequested"]) for step in shown["transitions"]] == [
        ("NotStarted", False),
        ("InProgress", False),
        ("InProgress", True),
        ("Cancelled", True),
    ]
    assert "History" in card.splitlines()
    assert card.splitlines()[-1].endswith("  Cancelled")


def test_show_and_watch_tell_the_progress_the_handler_reports_and_the_rest_state_does_not(serve: Serve) -> None:
    job = create(serve, TENANT_A)
    watching = watch(serve, job)
    watching.wait_for("% forecasting: ")

    shown = json.loads(ok(jobs(serve, "show", job, "--json")))["jobInstance"]
    card = ok(jobs(serve, "show", job)).splitlines()
    ok(jobs(serve, "cancel", job))
    code = watching.finish()
    state = httpx.get(
        job_url(serve, job), headers={"x-ms-client-tenant-id": TENANT_A, "ActivityId": "a", "RequestId": "r"}
    )

    assert shown["progress"]["message"].startswith("forecasting: ")
    assert 0 <= shown["progress"]["percent"] <= 100
    assert shown["progress"]["updateTimeUtc"] >= shown["startTimeUtc"]
    progress_lines = [line for line in card if line.startswith("Progress")]  # the progress moves between calls
    assert len(progress_lines) == 1
    assert re.fullmatch(r"Progress     [0-9.]+% forecasting: \d+ of 120 s \(at \S+Z\)", progress_lines[0])
    assert code == 0
    assert any(re.fullmatch(r"\S+  InProgress  [0-9.]+% forecasting: \d+ of 120 s", line) for line in watching.lines)
    assert set(state.json()) == {"status", "startTimeUtc", "endTimeUtc"}, "Fabric's state has no progress"


def test_ctrl_c_stops_watching_not_the_job(serve: Serve) -> None:
    job = create(serve, TENANT_B)
    watching = watch(serve, job)
    watching.wait_for("InProgress")

    watching.process.send_signal(signal.SIGINT)
    code = watching.finish()

    assert code == 130
    assert watching.stderr == "stopped watching; the job was not cancelled\n"
    assert rest_status(serve, TENANT_B, job) == "InProgress"


def test_an_id_in_two_tenants_needs_the_tenant(serve: Serve) -> None:
    job = create(serve, TENANT_A)
    create(serve, TENANT_B, job_instance_id=job)

    ambiguous = one_line_failure(jobs(serve, "show", job), 1)
    shown = json.loads(ok(jobs(serve, "show", job, "--tenant", TENANT_B, "--json")))

    assert "is not unique: give --tenant" in ambiguous
    assert shown["jobInstance"]["tenantId"] == TENANT_B


def test_failures_are_one_line_and_a_non_zero_exit(serve: Serve, tmp_path: Path) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]

    unreachable = one_line_failure(jobs(None, "list", "--grpc-target", f"127.0.0.1:{closed_port}"), 1)
    not_grpc = one_line_failure(jobs(None, "list", "--grpc-target", serve.rest_url.removeprefix("http://")), 1)
    unknown = one_line_failure(jobs(serve, "cancel", str(uuid.uuid4())), 1)
    bad_status = one_line_failure(jobs(serve, "list", "--status", "Stuck"), 2)
    bad_id = one_line_failure(jobs(serve, "watch", "not-a-uuid"), 2)

    assert f"cannot reach a fabric-jobs service at 127.0.0.1:{closed_port}" in unreachable
    assert "cannot reach a fabric-jobs service" in not_grpc
    assert "no job instance" in unknown
    assert "--status" in bad_status
    assert "must be a UUID" in bad_id


def test_purge_deletes_ended_jobs_of_the_filter_and_dry_run_only_counts(serve: Serve) -> None:
    tenant = str(uuid.uuid4())
    ended, running = create(serve, tenant, seconds=0), create(serve, tenant, seconds=120)
    eventually_blocking(
        lambda: rest_status(serve, tenant, ended) == "Completed" or None, within=CLI_SECONDS, what="the quick job's end"
    )

    dry_run = ok(jobs(serve, "purge", "--older-than", "0", "--tenant", tenant, "--dry-run"))
    too_young = json.loads(ok(jobs(serve, "purge", "--older-than", "1d", "--tenant", tenant, "--json")))
    assert rest_status(serve, tenant, ended) == "Completed"
    purged = json.loads(ok(jobs(serve, "purge", "--older-than", "0", "--tenant", tenant, "--json")))

    assert dry_run == "would delete 1 ended job instance(s) (dry run: nothing deleted)\n"
    assert too_young == {"purged": 0, "dryRun": False}
    assert purged == {"purged": 1, "dryRun": False}
    gone = httpx.get(
        job_url(serve, ended), headers={"x-ms-client-tenant-id": tenant, "ActivityId": "a", "RequestId": "r"}
    )
    assert gone.status_code == 404
    assert rest_status(serve, tenant, running) == "InProgress"
    ok(jobs(serve, "cancel", running))


def test_purge_options_that_are_wrong_are_one_line_and_exit_2(serve: Serve) -> None:
    no_age = one_line_failure(jobs(serve, "purge"), 2)
    bad_age = one_line_failure(jobs(serve, "purge", "--older-than", "7x"), 2)
    negative = one_line_failure(jobs(serve, "purge", "--older-than=-1d"), 2)
    unended = one_line_failure(jobs(serve, "purge", "--older-than", "7d", "--status", "InProgress"), 2)

    assert "--older-than is required" in no_age
    assert "--older-than: must be a number and a unit" in bad_age
    assert "--older-than: must be a number and a unit" in negative
    assert "only ended jobs are purged" in unended


def test_cancel_all_of_an_item_or_a_workspace_counts_first_then_cancels_once(serve: Serve) -> None:
    tenant = str(uuid.uuid4())
    ended = create(serve, tenant)  # ended Cancelled, not Completed: the list test expects no Completed job
    ok(jobs(serve, "cancel", ended))
    running = [create(serve, tenant), create(serve, tenant)]
    of_item = ("cancel", "--all", "--item", ITEM, "--tenant", tenant)

    counted = ok(jobs(serve, *of_item, "--dry-run"))
    assert [rest_status(serve, tenant, job) for job in running] != ["Cancelled", "Cancelled"]
    cancelled = json.loads(ok(jobs(serve, *of_item, "--json")))
    again = ok(jobs(serve, *of_item))
    of_workspace = ok(jobs(serve, "cancel", "--all", "--workspace", WORKSPACE, "--tenant", tenant))

    assert counted == "would cancel up to 2 job instance(s) not ended (dry run: nothing cancelled)\n"
    assert cancelled == {"asked": 2, "ended": 2}
    assert [rest_status(serve, tenant, job) for job in running] == ["Cancelled", "Cancelled"]
    assert rest_status(serve, tenant, ended) == "Cancelled"
    assert again == of_workspace == "asked 0 job instance(s) to cancel; 0 ended\n"


def test_cancel_all_options_that_are_wrong_are_one_line_and_exit_2(serve: Serve) -> None:
    some_id = str(uuid.uuid4())
    everything = one_line_failure(jobs(serve, "cancel", "--all"), 2)
    of_a_tenant = one_line_failure(jobs(serve, "cancel", "--all", "--tenant", TENANT_A), 2)
    with_an_id = one_line_failure(jobs(serve, "cancel", some_id, "--all", "--item", ITEM), 2)
    nothing = one_line_failure(jobs(serve, "cancel"), 2)
    dry_run_of_one = one_line_failure(jobs(serve, "cancel", some_id, "--dry-run"), 2)

    assert "--all needs --item or --workspace" in everything
    assert "--all needs --item or --workspace" in of_a_tenant
    assert "give no JOB_INSTANCE_ID" in with_an_id
    assert "give a JOB_INSTANCE_ID, or --all" in nothing
    assert "--dry-run goes with --all" in dry_run_of_one
