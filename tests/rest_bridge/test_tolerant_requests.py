"""Create requests read the way Fabric evolves them: a property this workload does not know is passed over
(counted by name, logged once), an invokeType string or number it does not know is taken as UnknownFutureValue
(stored, and seen by the handler), and a request without ActivityId or RequestId gets generated ones. On both
bridge channels."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
import pytest

from fabric_jobs import InvokeType, request_context
from fabric_jobs.v1 import job_service_pb2 as pb
from tests import jobs
from tests.harness import RunningServer, eventually
from tests.rest_bridge.client import Bridge, JobRef
from tests.rest_bridge.metrics_scrape import Scrape


def new_job() -> JobRef:
    return JobRef(job_type=jobs.RECORDS_PAYLOAD)


async def stored_invoke_type(server: RunningServer, job: JobRef) -> pb.JobInvokeType.ValueType:
    reply = await server.stub.GetJobInstance(pb.GetJobInstanceRequest(key=job.key))
    return reply.job_instance.invoke_type


async def handler_saw(job: JobRef) -> InvokeType:
    return await eventually(lambda: jobs.invoke_types.get(job.job_instance_id), what=f"{job} handled")


async def metrics(bridge: Bridge) -> Scrape:
    """The bridge's /metrics, read as Prometheus does (the response check of the client is for Fabric's calls)."""
    async with httpx.AsyncClient(transport=bridge.client._transport, base_url=bridge.client.base_url) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    return Scrape(response.text)


def warnings_naming(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


async def test_an_unknown_property_is_passed_over_counted_by_name_and_logged_once(
    bridge: Bridge, bridge_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"fabricAddedThis{uuid.uuid4().hex[:8]}"
    before = (await metrics(bridge)).value("fabric_jobs_rest_unknown_properties_total", property=name)
    first, second = new_job(), new_job()
    for job in (first, second):
        body = {"invokeType": "Manual", "creationPayload": {"n": 1}, name: {"any": ["thing"]}, "parameters": []}
        response = await bridge.create(job, body)
        assert response.status_code == 202, response.text
    assert await handler_saw(first) == InvokeType.MANUAL
    assert jobs.payloads[first.job_instance_id] == {"n": 1}
    after = await metrics(bridge)
    assert after.value("fabric_jobs_rest_unknown_properties_total", property=name) == before + 2
    assert after.value("fabric_jobs_rest_unknown_properties_total", property="parameters") >= 2
    assert len(warnings_naming(caplog, repr(name))) == 1


async def test_the_creation_payload_keeps_its_rules_beside_unknown_properties(bridge: Bridge) -> None:
    response = await bridge.create(new_job(), {"invokeType": "Manual", "creationPayload": [1], "extra": 1})
    assert response.status_code == 400
    assert response.json()["messageParameters"] == ["creationPayload"]


@pytest.mark.parametrize(
    "sent",
    ["Triggered", "manual", "", 3, 7, -1, 2.5, 10**30],
    ids=["string", "other-case", "empty", "3", "7", "negative", "fraction", "huge"],
)
async def test_an_unknown_invoke_type_is_stored_as_unknown_future_value_and_the_handler_sees_it(
    bridge: Bridge, bridge_server: RunningServer, caplog: pytest.LogCaptureFixture, sent: Any
) -> None:
    counted = (await metrics(bridge)).value("fabric_jobs_rest_unknown_invoke_types_total")
    job = new_job()
    response = await bridge.create(job, {"invokeType": sent})
    assert response.status_code == 202, response.text
    assert await handler_saw(job) == InvokeType.UNKNOWN_FUTURE_VALUE
    assert await stored_invoke_type(bridge_server, job) == pb.JOB_INVOKE_TYPE_UNKNOWN_FUTURE_VALUE
    assert (await metrics(bridge)).value("fabric_jobs_rest_unknown_invoke_types_total") == counted + 1
    again = await bridge.create(job, {"invokeType": sent})
    assert again.status_code == 202, "the same request again is the same job"
    assert len([r for r in caplog.records if r.levelno == logging.WARNING and "invokeType" in r.getMessage()]) <= 1


async def test_known_invoke_types_keep_their_meaning_and_a_different_one_is_a_conflict(bridge: Bridge) -> None:
    job = new_job()
    assert (await bridge.create(job, {"invokeType": 2.0})).status_code == 202
    assert await handler_saw(job) == InvokeType.MANUAL
    assert (await bridge.create(job, {"invokeType": "Weekly"})).status_code == 409


async def test_a_request_without_activity_or_request_id_gets_generated_ones_echoed_and_logged(
    bridge: Bridge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.handler.addFilter(request_context.ContextFilter())
    caplog.set_level(logging.INFO)
    job = new_job()
    no_ids = job.headers(ActivityId=None, RequestId=None)
    answers = [await bridge.create(job, headers=no_ids), await bridge.get(job, headers=no_ids)]
    with_request_id = job.headers(ActivityId=None)
    answers.append(await bridge.cancel(job, headers=with_request_id))
    assert [answer.status_code for answer in answers] == [202, 200, 200]
    generated = [(answer.headers["ActivityId"], answer.headers["RequestId"]) for answer in answers]
    for activity_id, request_id in generated[:2]:
        assert uuid.UUID(activity_id).version == uuid.UUID(request_id).version == 4
    assert generated[2][1] == with_request_id["RequestId"], "an id that was sent is kept"
    assert len(set(generated)) == 3, "each request its own ids"
    create_ids = generated[0]
    server_lines = [
        record
        for record in caplog.records
        if record.name.startswith("fabric_jobs.server") and job.job_instance_id in str(getattr(record, "job", ""))
    ]
    assert any((r.activity_id, r.request_id) == create_ids for r in server_lines)  # type: ignore[attr-defined]


async def test_without_the_tenant_header_it_is_still_400(bridge: Bridge) -> None:
    job = new_job()
    response = await bridge.create(job, headers=job.headers(**{"x-ms-client-tenant-id": None, "ActivityId": None}))
    assert response.status_code == 400
    assert response.json()["messageParameters"] == ["x-ms-client-tenant-id"]


async def test_text_that_is_not_unicode_in_what_is_passed_over_is_no_error(bridge: Bridge) -> None:
    job = new_job()
    raw = b'{"invokeType": "\\ud800", "\\ud800": 1}'
    headers = {**job.headers(), "Content-Type": "application/json"}
    response = await bridge.create(job, content=raw, headers=headers)
    assert response.status_code == 202, response.text
    assert await handler_saw(job) == InvokeType.UNKNOWN_FUTURE_VALUE


async def test_the_served_openapi_document_says_what_is_tolerated(bridge: Bridge) -> None:
    document = (await bridge.client.get("/openapi.json")).json()
    body = document["components"]["schemas"]["CreateItemJobInstanceRequest"]
    assert body["additionalProperties"] is True
    assert body["required"] == ["invokeType"]
    accepted = body["properties"]["invokeType"]["anyOf"]
    assert {"type": "string"} in accepted
    assert {"type": "number"} in accepted
    for operations in document["paths"].values():
        for operation in operations.values():
            headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
            assert headers["ActivityId"]["required"] is False
            assert headers["RequestId"]["required"] is False
            assert headers["x-ms-client-tenant-id"]["required"] is True
            assert headers["Authorization"]["required"] is True
            assert all(
                {"ActivityId", "RequestId"} <= set(answer["headers"]) for answer in operation["responses"].values()
            )
