"""Jobs acting for their user through `fabric-jobs serve` with authentication on, on SQLite, against the Entra
stand-in: tokens for two scopes, the caller, a late start, Entra's errors, key rotation, and no secret anywhere."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests import tokens
from tests.entra import JWT_BEARER, EntraStandIn, entra_error
from tests.on_behalf_of.acting_jobs import FABRIC, ITEM_TYPE, STORAGE
from tests.on_behalf_of.stack import ITEM, JOBS, WORKSPACE, Deployment, leaks, new_key_file
from tests.processes import Processes, Serve, clean_env, command, launch, stop

TWO_SCOPES = f"{ITEM_TYPE}.TwoScopes"
PLAIN_TWO_SCOPES = f"{ITEM_TYPE}.PlainTwoScopes"
UNHANDLED = f"{ITEM_TYPE}.Unhandled"
NO_SCOPES = f"{ITEM_TYPE}.NoScopes"
BLOCKER = f"{ITEM_TYPE}.Blocker"
EXPECTED_CALLER = {
    "tenant_id": tokens.CLIENT_TENANT_ID,
    "object_id": tokens.USER_OBJECT_ID,
    "user_principal_name": "megan@contoso.example",
    "app_id": tokens.FABRIC_APP_ID,
}


def start_serve(deployment: Deployment, processes: Processes, *extra: str, admin: bool = False) -> Serve:
    database = f"sqlite:///{deployment.directory / 'jobs.db'}"
    args = ["serve", "--grpc-port=0", "--rest-port=0", f"--database={database}", f"--jobs={JOBS}", "--max-threads=1"]
    args += ["--log-level=DEBUG", "--log-format=json", *deployment.auth_options(), *extra]
    args += ["--admin-port=0"] if admin else []
    return processes.track(launch(args, grpc=True, rest=True, env=deployment.env(), cwd=Path.cwd()))


def report(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def admin_url(serve: Serve) -> str:
    line = next(line for line in serve.output if "web console on " in line)
    return line.split("web console on ")[1].split("/console")[0]


def test_handlers_get_tokens_for_two_scopes_and_the_caller_even_when_started_after_the_assertion_expired(
    deployment: Deployment, processes: Processes, entra: EntraStandIn
) -> None:
    serve = start_serve(deployment, processes, *deployment.entra_options(), admin=True)
    out = deployment.directory

    async_job = deployment.create(serve.rest_url, TWO_SCOPES, report=str(out / "async.json"))
    plain_job = deployment.create(serve.rest_url, PLAIN_TWO_SCOPES, report=str(out / "plain.json"))
    for job_type, job in ((TWO_SCOPES, async_job), (PLAIN_TWO_SCOPES, plain_job)):
        assert deployment.wait_for(serve.rest_url, job_type, job)["status"] == "Completed"
    for name in ("async.json", "plain.json"):
        got = report(out / name)
        assert got["caller"] == EXPECTED_CALLER
        assert set(got["tokens"]) == {STORAGE, FABRIC}
        assert set(got["tokens"].values()) <= set(entra.issued_access_tokens)
    exchanges = entra.token_requests(JWT_BEARER)
    assert [request["assertion"] for request in exchanges] == deployment.subject_tokens
    assert all(request["requested_token_use"] == "on_behalf_of" for request in exchanges)

    blocker = deployment.create(serve.rest_url, BLOCKER, wait_for=str(out / "go"))
    deployment.wait_for(serve.rest_url, BLOCKER, blocker, ("InProgress",))
    late = deployment.create(serve.rest_url, PLAIN_TWO_SCOPES, report=str(out / "late.json"))
    late_refresh_token = entra.issued_refresh_tokens[-1]
    entra.expire_assertions()  # an hour later, as far as Entra is concerned
    before = len(entra.token_requests())
    assert deployment.state(serve.rest_url, PLAIN_TWO_SCOPES, late)["status"] == "NotStarted"
    (out / "go").touch()

    assert deployment.wait_for(serve.rest_url, PLAIN_TWO_SCOPES, late)["status"] == "Completed"
    assert report(out / "late.json")["caller"] == EXPECTED_CALLER
    (refresh,) = entra.token_requests()[before:]
    assert refresh["grant_type"] == "refresh_token"
    assert refresh["refresh_token"] == late_refresh_token
    assert FABRIC in refresh["scope"].split()

    no_scopes = deployment.create(serve.rest_url, NO_SCOPES, report=str(out / "none.json"))
    assert deployment.wait_for(serve.rest_url, NO_SCOPES, no_scopes)["status"] == "Completed"
    assert report(out / "none.json")["error"] == "no_user_token"

    jobs = {async_job: TWO_SCOPES, plain_job: PLAIN_TWO_SCOPES, late: PLAIN_TWO_SCOPES, no_scopes: NO_SCOPES}
    _assert_no_secret_anywhere(deployment, serve, jobs)


def _assert_no_secret_anywhere(deployment: Deployment, serve: Serve, jobs: dict[str, str]) -> None:
    """Search for each secret's text in every output, answer and file of the deployment."""
    console = admin_url(serve)
    texts: dict[str, str | bytes] = {}
    for job, job_type in jobs.items():
        shown = subprocess.run(
            command("jobs", "show", job, "--grpc-target", serve.grpc_address),
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=30,
            check=True,
        )
        assert "megan@contoso.example" in shown.stdout
        texts[f"`jobs show {job}`"] = shown.stdout + shown.stderr
        params = {
            "tenantId": tokens.CLIENT_TENANT_ID,
            "workspaceId": WORKSPACE,
            "itemType": ITEM_TYPE,
            "itemId": ITEM,
            "jobType": job_type,
            "jobInstanceId": job,
        }
        detail = httpx.get(f"{console}/console/api/job", params=params)
        assert detail.status_code == 200, detail.text
        assert detail.json()["jobInstance"]["caller"]["objectId"] == tokens.USER_OBJECT_ID
        texts[f"the console's detail of {job}"] = detail.text
    listing = subprocess.run(
        command("jobs", "list", "--json", "--grpc-target", serve.grpc_address),
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=30,
        check=True,
    )
    texts["`jobs list --json`"] = listing.stdout
    texts["the console's listing"] = httpx.get(f"{console}/console/api/jobs").text
    database = deployment.directory / "jobs.db"
    with sqlite3.connect(database) as connection:
        texts["the database dump"] = "\n".join(connection.iterdump())
        assert connection.execute("SELECT count(*) FROM job_credentials").fetchone() == (0,)
    stop(serve)
    texts["the service's output (DEBUG, JSON logs, console traces)"] = serve.text()
    for path in deployment.directory.glob("jobs.db*"):
        texts[f"the database file {path.name}"] = path.read_bytes()
    assert '"name": "job ' in serve.text()  # the console exporter printed spans
    assert leaks(deployment.secrets(), texts) == []
    handlers_report = (deployment.directory / "async.json").read_text()  # the search finds what is there
    assert len(leaks(deployment.secrets(), {"a report": handlers_report})) == 2


def _token_error(state: dict[str, Any]) -> tuple[str, bool, str, str, str | None]:
    """(errorCode, isPermanent, source, Entra's error, Entra's correlation id) of a Failed job."""
    assert state["status"] == "Failed", state
    error = state["errorDetails"]
    (entra_detail,) = error["moreDetails"]
    correlation = {p["name"]: p["value"] for p in entra_detail.get("additionalParameters", [])}.get("correlationId")
    return error["errorCode"], error["isPermanent"], error["source"], entra_detail["errorCode"], correlation


def test_entras_refusals_end_the_job_failed_permanent_and_its_outages_transient(
    deployment: Deployment, processes: Processes, entra: EntraStandIn
) -> None:
    serve = start_serve(deployment, processes, *deployment.entra_options())
    out = deployment.directory
    consent = entra_error(400, "invalid_grant", 65001, "The user or administrator has not consented.")
    entra.fail_next(consent)
    no_consent = deployment.create(serve.rest_url, UNHANDLED, report=str(out / "consent.json"))
    at_refresh = {
        "interaction": entra_error(400, "interaction_required", 50076, "Multi-factor authentication needed."),
        "outage": entra_error(503, "temporarily_unavailable", 90006, "Busy.", **{"Retry-After": "600"}),
    }
    waiting = {
        name: deployment.create(serve.rest_url, UNHANDLED, report=str(out / f"{name}.json"), wait_for=str(out / name))
        for name in at_refresh
    }

    assert _token_error(deployment.wait_for(serve.rest_url, UNHANDLED, no_consent)) == (
        "UserTokenUnavailable",
        True,
        "User",
        "invalid_grant",
        consent.body["correlation_id"],
    )
    for name, answer in at_refresh.items():
        entra.fail_next(answer)
        (out / name).touch()
        state = deployment.wait_for(serve.rest_url, UNHANDLED, waiting[name])
        permanent = name == "interaction"
        assert _token_error(state) == (
            "UserTokenUnavailable",
            permanent,
            "User" if permanent else "External",
            answer.body["error"],
            answer.body["correlation_id"],
        )
        assert not (out / f"{name}.json").exists()
    assert leaks(deployment.secrets(), {"the service's output": serve.text()}) == []


def test_a_rotated_key_still_opens_the_credentials_of_waiting_jobs_and_a_wrong_key_fails_them_clearly(
    deployment: Deployment, processes: Processes
) -> None:
    out = deployment.directory
    old_key = deployment.key_file

    def queue_behind_a_blocker(serve: Serve, name: str) -> str:
        blocker = deployment.create(serve.rest_url, BLOCKER, wait_for=str(out / f"never-{name}"))
        deployment.wait_for(serve.rest_url, BLOCKER, blocker, ("InProgress",))
        job = deployment.create(serve.rest_url, PLAIN_TWO_SCOPES, report=str(out / f"{name}.json"))
        stop(serve)
        return job

    shutdown = "--shutdown-grace=0.2"
    waiting = queue_behind_a_blocker(start_serve(deployment, processes, *deployment.entra_options(), shutdown), "a")
    new_key = new_key_file(out / "new.key")
    rotating = start_serve(deployment, processes, *deployment.entra_options(key_file=new_key, old_key_file=old_key))
    assert deployment.wait_for(rotating.rest_url, PLAIN_TWO_SCOPES, waiting)["status"] == "Completed"
    assert report(out / "a.json")["caller"] == EXPECTED_CALLER
    sealed_with_new = queue_behind_a_blocker(rotating, "b")

    wrong = start_serve(deployment, processes, *deployment.entra_options(key_file=new_key_file(out / "wrong.key")))
    state = deployment.wait_for(wrong.rest_url, PLAIN_TWO_SCOPES, sealed_with_new)
    assert _token_error(state)[:4] == ("UserTokenUnavailable", True, "System", "credential_unreadable")
    assert "--token-key-file" in state["errorDetails"]["message"]
    assert wrong.process.poll() is None
    assert not (out / "b.json").exists()
