"""`fabric-jobs dev-tokens`: a local JWKS and a ready SubjectAndApp header, accepted by a real `serve` that checks
tokens as it would Fabric's; and a server without its authentication options names every missing one at once."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import httpx

from tests.processes import STARTUP_SECONDS, clean_env, command, kill_if_running, launch, stop

TENANT = "7c1d1a1e-0000-4000-8000-00000000c11e"
ITEM_TYPE = "Contoso.FinanceAnalytics.Forecast"


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args), capture_output=True, text=True, timeout=STARTUP_SECONDS, env=clean_env(**env), cwd=cwd
    )


def job_url(rest_url: str) -> str:
    return (
        f"{rest_url}/workspaces/{uuid.uuid4()}/items/{ITEM_TYPE}/{uuid.uuid4()}/jobTypes/calculateForecast"
        f"/instances/{uuid.uuid4()}"
    )


def test_dev_tokens_are_accepted_by_a_serve_that_checks_them(tmp_path: Path) -> None:
    made = run("dev-tokens", "--tenant", TENANT, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    header = made.stdout.strip()
    assert header.startswith('Authorization: SubjectAndAppToken1.0 subjectToken="'), made.stdout
    jwks = json.loads((tmp_path / "fabric-jobs-dev-jwks.json").read_text())
    assert [key["kty"] for key in jwks["keys"]] == ["RSA"]
    assert "d" not in jwks["keys"][0], "the JWKS must hold the public key only"
    serve_options = next(line for line in made.stderr.splitlines() if "--auth-jwks-file" in line).split()
    assert "--auth-audience" in serve_options, made.stderr
    assert "--auth-publisher-tenant-id" in serve_options, made.stderr

    options = serve_options[serve_options.index("--auth-jwks-file") :]
    database = f"sqlite:///{tmp_path / 'jobs.db'}"
    serve = launch(
        ["serve", "--grpc-port", "0", "--rest-port", "0", "--database", database, *options],
        grpc=True,
        rest=True,
        cwd=tmp_path,
    )
    try:
        name, _, value = header.partition(": ")
        body = {"invokeType": "Manual", "creationPayload": {"durationSeconds": 0}}
        url = job_url(serve.rest_url)
        ids = {"ActivityId": str(uuid.uuid4()), "RequestId": str(uuid.uuid4())}
        headers = {name: value, "x-ms-client-tenant-id": TENANT, **ids}
        accepted = httpx.post(url, json=body, headers=headers, timeout=10)
        other_tenant = {**headers, "x-ms-client-tenant-id": str(uuid.uuid4())}
        refused = httpx.post(job_url(serve.rest_url), json=body, headers=other_tenant, timeout=10)
        stop(serve)
    finally:
        kill_if_running(serve)
    assert accepted.status_code == 202, accepted.text
    assert refused.status_code == 401
    assert refused.json()["message"].endswith("subjectToken: tenant does not match x-ms-client-tenant-id")


def test_dev_tokens_run_twice_keep_the_same_key(tmp_path: Path) -> None:
    first = run("dev-tokens", "--tenant", TENANT, cwd=tmp_path)
    jwks = (tmp_path / "fabric-jobs-dev-jwks.json").read_text()
    second = run("dev-tokens", "--tenant", TENANT, cwd=tmp_path)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert (tmp_path / "fabric-jobs-dev-jwks.json").read_text() == jwks


def test_dev_tokens_need_a_tenant_guid(tmp_path: Path) -> None:
    done = run("dev-tokens", "--tenant", "contoso", cwd=tmp_path)
    assert done.returncode == 2
    assert "--tenant: must be a GUID" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_missing_authentication_option_is_named_at_once(tmp_path: Path) -> None:
    done = run("serve", "--grpc-port", "0", "--rest-port", "0", cwd=tmp_path)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, done.stderr
    assert "--auth-audience" in errors[0]
    assert "--auth-publisher-tenant-id" in errors[0]
    assert "--dev" in errors[0]
    assert "dev-tokens" in errors[0]
