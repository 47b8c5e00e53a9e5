"""Observability of real `fabric-jobs` processes: JSON log lines that carry the ids and never a token or a creation
payload (the whole output read, spans printed by the console exporter included), and /metrics on --metrics-port."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from fabric_jobs import demo
from fabric_jobs.observability import tracing
from tests import tokens
from tests.harness import eventually_blocking
from tests.jobs import COMPLETES, ITEM_TYPE
from tests.processes import REPOSITORY_ROOT, STARTUP_SECONDS, Processes, Serve, clean_env, command, launch, stop
from tests.rest_bridge.client import Bridge, JobRef, client_at
from tests.rest_bridge.metrics_scrape import Scrape, parse

METRICS_URL = re.compile(r"fabric-jobs: metrics on (http://\S+)")
PAYLOAD_SECRET = "payload-secret-5f0c9d2e"


def metrics_url(serve: Serve) -> str:
    for line in serve.output:
        if match := METRICS_URL.match(line):
            return match.group(1)
    raise AssertionError("no metrics address announced:\n" + serve.text())


def job_path(job_instance_id: str) -> str:
    return (
        f"/workspaces/{uuid.uuid4()}/items/{ITEM_TYPE}/{uuid.uuid4()}/jobTypes/{COMPLETES}/instances/{job_instance_id}"
    )


@pytest.mark.slow
def test_no_token_authorization_header_or_payload_reaches_any_line_of_output(tmp_path: Path) -> None:
    jwks = tokens.write_jwks(tmp_path)
    subject, app = tokens.mint_subject_token(), tokens.mint_app_token()
    authorization = tokens.authorization_header(subject, app)
    forged = tokens.authorization_header(subject, tokens.mint_app_token(key=tokens.new_signing_key("elsewhere")))
    args = [
        "serve",
        "--grpc-port=0",
        "--rest-port=0",
        f"--database=sqlite:///{tmp_path / 'jobs.db'}",
        "--jobs=tests.jobs:registry",
        f"--auth-audience={tokens.TEST_AUDIENCE}",
        f"--auth-publisher-tenant-id={tokens.PUBLISHER_TENANT_ID}",
        f"--auth-jwks-file={jwks}",
        "--log-level=DEBUG",
        "--log-format=json",
    ]
    env = clean_env(OTEL_TRACES_EXPORTER="console", OTEL_BSP_SCHEDULE_DELAY="50")
    activity, request = str(uuid.uuid4()), str(uuid.uuid4())
    path = job_path(str(uuid.uuid4()))
    with Processes() as processes:
        serve = processes.track(launch(args, rest=True, grpc=True, cwd=REPOSITORY_ROOT, env=env))
        headers = {
            "Authorization": authorization,
            "x-ms-client-tenant-id": tokens.CLIENT_TENANT_ID,
            "ActivityId": activity,
            "RequestId": request,
        }
        body = {"invokeType": "Manual", "creationPayload": {"secret": PAYLOAD_SECRET}}
        with httpx.Client(base_url=serve.rest_url, timeout=30) as client:
            assert client.post(path, json=body, headers=headers).status_code == 202
            assert client.get(path, headers=headers).status_code == 200
            assert client.post(path, json=body, headers={**headers, "Authorization": forged}).status_code == 401
            assert client.get(path, headers={**headers, "Authorization": "Bearer " + subject}).status_code == 401
        output = stop(serve)

    secrets = [authorization, forged, subject, app, PAYLOAD_SECRET, *subject.split("."), *app.split(".")]
    leaked = [secret for secret in secrets if secret in output]
    assert not leaked
    assert '"name": "POST Jobs_CreateItemJobInstance"' in output, "the console exporter printed no request span"

    log_lines = [json.loads(line) for line in output.splitlines() if line.startswith('{"time"')]
    requests = [line for line in log_lines if line["logger"] == "fabric_jobs.rest_bridge.middleware"]
    create = [line for line in requests if line["route"] == "Jobs_CreateItemJobInstance" and line["status"] == 202]
    assert len(create) == 1, requests
    assert (create[0]["activity_id"], create[0]["request_id"], create[0]["tenant"]) == (
        activity,
        request,
        tokens.CLIENT_TENANT_ID,
    )
    assert create[0]["job"] == path.removeprefix("/workspaces/").replace("/items/", "/").replace(
        "/jobTypes/", "/"
    ).replace("/instances/", "/")
    assert create[0]["method"] == "POST"
    assert create[0]["duration_ms"] >= 0


def test_a_grpc_replica_serves_metrics_on_its_metrics_port(tmp_path: Path) -> None:
    args = ["grpc", "--dev", "--grpc-port=0", f"--database=sqlite:///{tmp_path / 'jobs.db'}", "--metrics-port=0"]
    with Processes() as processes:
        serve = processes.track(launch(args, grpc=True))
        url = metrics_url(serve)

        def measured() -> Scrape | None:
            response = httpx.get(url, timeout=5)
            assert response.status_code == 200
            scraped = parse(response.text)
            return scraped if scraped.value("fabric_jobs_event_loop_lag_seconds_count") > 0 else None

        metrics = eventually_blocking(measured, within=10, what="the event-loop lag measured")
        assert metrics.value("process_resident_memory_bytes") > 0
        assert "fabric_jobs_grpc_server_handled" in metrics.families
        stop(serve)


def test_a_taken_metrics_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            command(
                "grpc", "--dev", "--grpc-port=0", f"--database=sqlite:///{tmp_path / 'j.db'}", f"--metrics-port={port}"
            ),
            capture_output=True,
            text=True,
            timeout=STARTUP_SECONDS,
            env=clean_env(),
        )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert errors == [
        f"fabric-jobs grpc: error: --metrics-port: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


def test_a_span_exporter_that_is_not_installed_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        command("serve", "--dev", "--grpc-port=0", "--rest-port=0", f"--database=sqlite:///{tmp_path / 'j.db'}"),
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
        env=clean_env(OTEL_TRACES_EXPORTER="zipkin_json"),
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "fabric-jobs serve: error: OTEL_TRACES_EXPORTER: no span exporter named 'zipkin_json' is installed"
    ]


@pytest.mark.parametrize(
    ("environ", "exporters"),
    [
        ({}, []),
        ({"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_TRACES_EXPORTER": "otlp,none"}, []),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ["otlp_proto_grpc"]),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, ["otlp_proto_http"]),
        (
            {
                "OTEL_TRACES_EXPORTER": "otlp, console",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            },
            ["otlp_proto_http", "console"],
        ),
    ],
)
def test_otel_traces_exporter_names_the_sdks_exporters(environ: dict[str, str], exporters: list[str]) -> None:
    assert tracing.exporter_names(environ) == exporters


def test_tracing_stays_off_when_the_sdk_is_disabled() -> None:
    assert not tracing.configure_from_environment({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"})
    assert not tracing.enabled()


def test_a_worker_serves_metrics_on_its_metrics_port(postgres_url: str) -> None:
    with Processes() as processes:
        worker = processes.track(
            launch(
                ["worker", "--database", postgres_url, "--jobs", "fabric_jobs.demo:registry", "--metrics-port=0"],
                started="fabric-jobs: worker started",
            )
        )
        response = httpx.get(metrics_url(worker), timeout=5)
        assert response.status_code == 200
        metrics = parse(response.text)
        assert metrics.value("fabric_jobs_executor_threads_max") > 0
        assert "fabric_jobs_executor_lost_jobs" in metrics.families
        stop(worker)


async def test_procrastinates_lines_keep_our_format_and_stay_below_warning(postgres_url: str) -> None:
    """On PostgreSQL each job used to add procrastinate's INFO lines whose `job` field was its whole job dict."""
    args = ["serve", "--dev", "--grpc-port=0", "--rest-port=0", f"--database={postgres_url}", "--log-format=json"]
    with Processes() as processes:
        serve = processes.track(launch([*args, "--jobs=fabric_jobs.demo:registry"], grpc=True, rest=True))
        job = JobRef(item_type=demo.ITEM_TYPE, job_type=demo.JOB_TYPE)
        async with client_at(serve.rest_url) as http:
            bridge = Bridge(http)
            body = {"invokeType": "Manual", "creationPayload": {"durationSeconds": 0}}
            assert (await bridge.create(job, body)).status_code == 202
            await bridge.wait_for(job, "Completed")
        output = await asyncio.to_thread(stop, serve)

    entries = [json.loads(line) for line in output.splitlines() if not line.startswith("fabric-jobs: ")]
    assert all(isinstance(entry, dict) for entry in entries)
    ours = f"{job.workspace_id}/{job.item_type}/{job.item_id}/{job.job_type}/{job.job_instance_id}"
    assert any(entry["job"] == ours and "started" in entry["message"] for entry in entries), output
    assert all(entry["job"] in (None, ours) for entry in entries), output
    quiet = [entry for entry in entries if entry["logger"].startswith("procrastinate") and entry["level"] == "INFO"]
    assert quiet == [], output
