"""One log line per request (method, route, status, duration) and per job transition, each with ActivityId,
RequestId, tenant and job; the JSON format carries the same fields."""

from __future__ import annotations

import json
import logging

import pytest

from fabric_jobs import request_context
from fabric_jobs.observability.logs import JsonFormatter, TextFormatter
from fabric_jobs.server.model import JobKey
from tests.rest_bridge.client import Bridge, JobRef

KEY = JobKey("tenant-4", "w", "T.Item", "i", "jobType", "n")
JOB_LINES = (") created (", ") started", ") ended Completed")


def job_of(job: JobRef) -> str:
    return f"{job.workspace_id}/{job.item_type}/{job.item_id}/{job.job_type}/{job.job_instance_id}"


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.handler.addFilter(request_context.ContextFilter())
    caplog.set_level(logging.INFO)
    return caplog


async def test_each_request_is_one_line_with_route_status_duration_and_ids(
    bridge: Bridge, records: pytest.LogCaptureFixture
) -> None:
    job = JobRef()
    await bridge.create(job, headers=job.headers(ActivityId="activity-1", RequestId="request-1"))
    await bridge.get(job, headers=job.headers(ActivityId="activity-2", RequestId="request-2"))
    lines = [record for record in records.records if record.name == "fabric_jobs.rest_bridge.middleware"]
    assert [(r.method, r.route, r.status) for r in lines] == [  # type: ignore[attr-defined]
        ("POST", "Jobs_CreateItemJobInstance", 202),
        ("GET", "Jobs_GetItemJobInstanceState", 200),
    ]
    assert [(r.activity_id, r.request_id, r.tenant, r.job) for r in lines] == [  # type: ignore[attr-defined]
        ("activity-1", "request-1", job.tenant_id, job_of(job)),
        ("activity-2", "request-2", job.tenant_id, job_of(job)),
    ]
    assert all(r.duration_ms >= 0 for r in lines)  # type: ignore[attr-defined]


async def test_job_transitions_are_logged_with_the_tenant_and_job(
    bridge: Bridge, records: pytest.LogCaptureFixture
) -> None:
    job = JobRef()
    await bridge.create(job, headers=job.headers(ActivityId="activity-3"))
    await bridge.wait_for(job, "Completed")
    transitions = [
        record
        for record in records.records
        if record.name.startswith("fabric_jobs.server") and any(part in record.getMessage() for part in JOB_LINES)
    ]
    assert len(transitions) == 3, [record.getMessage() for record in records.records]
    assert {(r.tenant, r.job, r.activity_id) for r in transitions} == {  # type: ignore[attr-defined]
        (job.tenant_id, job_of(job), "activity-3")
    }


async def test_a_path_that_is_not_a_job_key_is_not_logged_as_one(
    bridge: Bridge, records: pytest.LogCaptureFixture
) -> None:
    job = JobRef().but(workspace_id="not%0Aan-id")
    await bridge.get(job, headers=job.headers(**{"x-ms-client-tenant-id": "not-a-tenant"}))
    [line] = [record for record in records.records if record.name == "fabric_jobs.rest_bridge.middleware"]
    assert (line.tenant, line.job, line.status) == ("-", "-", 400)  # type: ignore[attr-defined]


def formatted(formatter: logging.Formatter, **extra: object) -> str:
    record = logging.LogRecord("fabric_jobs.x", logging.INFO, __file__, 1, "GET %s", ("route",), None)
    for name, value in extra.items():
        setattr(record, name, value)
    request_context.ContextFilter().filter(record)
    return formatter.format(record)


def test_json_lines_are_one_object_with_the_context_and_request_fields() -> None:
    with request_context.bound("activity-4", None), request_context.job_bound(KEY):
        line = formatted(JsonFormatter(), method="GET", route="r", status=200, duration_ms=1.5)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "GET route"
    assert (entry["activity_id"], entry["request_id"], entry["tenant"], entry["job"]) == (
        "activity-4",
        None,
        "tenant-4",
        "w/T.Item/i/jobType/n",
    )
    assert (entry["method"], entry["route"], entry["status"], entry["duration_ms"]) == ("GET", "r", 200, 1.5)
    assert entry["time"].endswith("Z")


def test_text_lines_name_the_context() -> None:
    with request_context.bound("activity-5", "request-5"), request_context.job_bound(KEY):
        line = formatted(TextFormatter())
    assert "[activity=activity-5 request=request-5 tenant=tenant-4 job=w/T.Item/i/jobType/n] GET route" in line
