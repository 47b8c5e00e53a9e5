"""The console's JSON API and its access rules, over the in-process channel and real gRPC, on a real JobService."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest

from fabric_jobs.console import ConsoleSettings, create_console_app
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc
from tests.conftest import new_key
from tests.harness import eventually
from tests.jobs import COOPERATES, FAILS, ITEM_TYPE
from tests.rest_bridge.schemas import validate

TOKEN = "console-token-for-tests"
CONSOLE_URL = "http://127.0.0.1:8081"


async def client_for(channel: grpc.aio.Channel, token: str | None = None) -> httpx.AsyncClient:
    app = create_console_app(ConsoleSettings(token=token), channel, asyncio.Event())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=CONSOLE_URL)


@pytest.fixture
async def console(channel: grpc.aio.Channel) -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(channel) as client:
        yield client


async def create(channel: grpc.aio.Channel, job_type: str, tenant: str) -> pb.JobInstanceKey:
    key = new_key(ITEM_TYPE, job_type, tenant_id=tenant)
    stub = pb_grpc.JobServiceStub(channel)
    await stub.CreateJobInstance(pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL))
    return key


def key_query(key: pb.JobInstanceKey) -> dict[str, str]:
    return {
        "tenantId": key.tenant_id,
        "workspaceId": key.workspace_id,
        "itemType": key.item_type,
        "itemId": key.item_id,
        "jobType": key.job_type,
        "jobInstanceId": key.job_instance_id,
    }


async def until_status(console: httpx.AsyncClient, key: pb.JobInstanceKey, status: str) -> Any:
    async def reached() -> Any:
        job = (await console.get("/console/api/job", params=key_query(key))).json()
        return job if job["jobInstance"]["status"] == status else None

    return await eventually(reached, what=f"the console showing the job {status}")


async def test_jobs_counts_detail_and_cancel(console: httpx.AsyncClient, channel: grpc.aio.Channel) -> None:
    tenant = str(uuid.uuid4())
    failing = await create(channel, FAILS, tenant)
    running = await create(channel, COOPERATES, str(uuid.uuid4()))
    failed = await until_status(console, failing, "Failed")
    await until_status(console, running, "InProgress")

    listed = (await console.get("/console/api/jobs")).json()
    of_tenant = (await console.get("/console/api/jobs", params={"tenant": tenant, "status": "failed"})).json()
    counts = (await console.get("/console/api/counts")).json()
    cancelled = await console.post("/console/api/cancel", json=key_query(running))
    history = await until_status(console, running, "Cancelled")

    assert {job["jobInstanceId"] for job in listed["jobInstances"]} == {
        running.job_instance_id,
        failing.job_instance_id,
    }
    assert [job["jobInstanceId"] for job in of_tenant["jobInstances"]] == [failing.job_instance_id]
    assert counts == {
        "counts": {"NotStarted": 0, "InProgress": 1, "Completed": 0, "Failed": 1, "Cancelled": 0},
        "total": 2,
    }
    assert failed["jobInstance"]["errorDetails"]["errorCode"] == "ForecastFailed"
    assert [step["status"] for step in failed["transitions"]] == ["NotStarted", "InProgress", "Failed"]
    assert cancelled.status_code == 200
    assert cancelled.json()["jobInstance"]["status"] in ("InProgress", "Cancelled")
    assert [step["status"] for step in history["transitions"]][-1] == "Cancelled"


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/console/api/jobs", {"tenant": "nope"}, "tenant"),
        ("/console/api/jobs", {"status": "Stuck"}, "status"),
        ("/console/api/counts", {"since": "yesterday"}, "since"),
        ("/console/api/jobs", {"jobType": "no spaces"}, "jobType"),
        ("/console/api/job", {"tenantId": str(uuid.uuid4())}, "workspaceId"),
        ("/console/api/events", {"item": "x"}, "item"),
    ],
)
async def test_bad_parameters_are_400_naming_them(
    console: httpx.AsyncClient, path: str, params: dict[str, str], parameter: str
) -> None:
    reply = await console.get(path, params=params)

    assert reply.status_code == 400
    validate(reply.json(), "ErrorResponse")
    assert (reply.json()["errorCode"], reply.json()["messageParameters"]) == ("InvalidRequest", [parameter])


async def test_unknown_jobs_and_bad_bodies_are_errors_not_crashes(console: httpx.AsyncClient) -> None:
    missing = {**key_query(pb.JobInstanceKey(item_type=ITEM_TYPE, job_type=COOPERATES))}
    for name in ("tenantId", "workspaceId", "itemId", "jobInstanceId"):
        missing[name] = str(uuid.uuid4())

    not_found = await console.get("/console/api/job", params=missing)
    cancel_missing = await console.post("/console/api/cancel", json=missing)
    not_json = await console.post("/console/api/cancel", content=b"{", headers=JSON_TYPE)
    not_object = await console.post("/console/api/cancel", json=[1])
    not_text = await console.post("/console/api/cancel", json={**missing, "tenantId": 7})

    assert (not_found.status_code, not_found.json()["errorCode"]) == (404, "JobInstanceNotFound")
    assert cancel_missing.status_code == 404
    assert not_json.status_code == not_object.status_code == not_text.status_code == 400
    assert not_text.json()["messageParameters"] == ["tenantId"]
    for reply in (not_found, cancel_missing, not_json, not_object, not_text):
        validate(reply.json(), "ErrorResponse")


async def test_cancel_all_of_an_item_and_what_it_refuses(console: httpx.AsyncClient, channel: grpc.aio.Channel) -> None:
    tenant = str(uuid.uuid4())
    running = await create(channel, COOPERATES, tenant)
    bystander = await create(channel, COOPERATES, tenant)
    await until_status(console, running, "InProgress")
    await until_status(console, bystander, "InProgress")

    of_item = {"tenant": tenant, "item": running.item_id, "status": "Completed"}  # statuses are set aside
    cancelled = await console.post("/console/api/cancel-all", json=of_item)
    again = await console.post("/console/api/cancel-all", json=of_item)
    everything = await console.post("/console/api/cancel-all", json={"tenant": tenant})
    not_text = await console.post("/console/api/cancel-all", json={"item": 7})
    bad_item = await console.post("/console/api/cancel-all", json={"item": "nope"})
    not_object = await console.post("/console/api/cancel-all", json=["item"])

    assert cancelled.json() == {"asked": 1, "ended": 1}
    assert again.json() == {"asked": 0, "ended": 0}
    await until_status(console, running, "Cancelled")
    assert (everything.status_code, everything.json()["messageParameters"]) == (400, ["workspace"])
    assert (not_text.status_code, not_text.json()["messageParameters"]) == (400, ["body"])
    assert (bad_item.status_code, bad_item.json()["messageParameters"]) == (400, ["item"])
    assert not_object.status_code == 400
    for reply in (everything, not_text, bad_item, not_object):
        validate(reply.json(), "ErrorResponse")
    assert (await until_status(console, bystander, "InProgress"))["jobInstance"]["cancelRequested"] is False


async def test_with_a_token_every_api_call_needs_it_and_the_event_stream_a_one_time_ticket(
    channel: grpc.aio.Channel,
) -> None:
    async with await client_for(channel, TOKEN) as console:
        page = await console.get("/console")
        script = await console.get("/console/static/console.js")
        anonymous = await console.get("/console/api/counts")
        wrong = await console.get("/console/api/counts", headers={"Authorization": "Bearer " + TOKEN[:-1] + "x"})
        bearer = await console.get("/console/api/counts", headers={"Authorization": f"Bearer {TOKEN}"})
        no_ticket = await console.get("/console/api/events")
        ticket_without_token = await console.post("/console/api/tickets")
        forged = await console.get("/console/api/events", params={"ticket": "made-up"})
        ticket = (await console.post("/console/api/tickets", headers={"Authorization": f"Bearer {TOKEN}"})).json()
        token_in_url = await console.get("/console/api/jobs", params={"ticket": ticket["ticket"]})

    assert page.status_code == script.status_code == 200
    assert "Content-Security-Policy" in page.headers
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.json()["errorCode"] == "AuthError"
    validate(anonymous.json(), "ErrorResponse")
    assert bearer.status_code == 200
    assert no_ticket.status_code == ticket_without_token.status_code == forged.status_code == 401
    assert token_in_url.status_code == 401


async def test_requests_another_site_could_make_through_the_browser_are_refused(
    console: httpx.AsyncClient, channel: grpc.aio.Channel
) -> None:
    key = await create(channel, COOPERATES, str(uuid.uuid4()))
    body = json.dumps(key_query(key))

    rebound = await console.get("/console/api/jobs", headers={"Host": "attacker.example:8081"})
    page_rebound = await console.get("/console", headers={"Host": "attacker.example"})
    cross_origin = await console.post(
        "/console/api/cancel", content=body, headers={"Origin": "http://attacker.example", **JSON_TYPE}
    )
    plain_text = await console.post("/console/api/cancel", content=body, headers={"Content-Type": "text/plain"})
    same_origin = await console.post("/console/api/cancel", content=body, headers={"Origin": CONSOLE_URL, **JSON_TYPE})
    ipv6 = await console.get("/console/api/counts", headers={"Host": "[::1]:8081"})

    assert rebound.status_code == page_rebound.status_code == cross_origin.status_code == 403
    assert plain_text.status_code == 403
    assert "application/json" in plain_text.json()["message"]
    assert plain_text.json()["errorCode"] == "Forbidden"
    validate(plain_text.json(), "ErrorResponse")
    assert same_origin.status_code == 200
    assert ipv6.status_code == 200


async def test_with_a_token_any_host_may_be_used(channel: grpc.aio.Channel) -> None:
    async with await client_for(channel, TOKEN) as console:
        reply = await console.get(
            "/console/api/counts", headers={"Host": "jobs.internal:8081", "Authorization": f"Bearer {TOKEN}"}
        )

    assert reply.status_code == 200


JSON_TYPE = {"Content-Type": "application/json"}
