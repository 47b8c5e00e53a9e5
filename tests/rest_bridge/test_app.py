"""The application around the Jobs calls: paths, ids, health, the OpenAPI document, the gRPC channel."""

from __future__ import annotations

import logging

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from openapi_schema_validator import OAS30ReadValidator

from fabric_jobs import request_context
from fabric_jobs.errors import ErrorCode
from fabric_jobs.rest_bridge.app import create_app
from fabric_jobs.rest_bridge.settings import BridgeSettings
from fabric_jobs.server.app import JobServer
from fabric_jobs.v1 import job_service_pb2 as pb
from tests.rest_bridge.client import BASE_PATH, Bridge, JobRef, client_for
from tests.rest_bridge.conftest import RecordingStub
from tests.rest_bridge.schemas import packaged_document


async def test_request_id_is_echoed_on_success_and_on_errors(bridge: Bridge) -> None:
    job = JobRef()
    for response in (
        await bridge.create(job, headers=job.headers(RequestId="req-1")),
        await bridge.get(job, headers=job.headers(RequestId="req-2")),
        await bridge.get(job.but(workspace_id="bad"), headers=job.headers(RequestId="req-3")),
        await bridge.client.get("/nowhere", headers={"RequestId": "req-4"}),
    ):
        assert response.headers["RequestId"] == response.request.headers["RequestId"]


async def test_activity_and_request_ids_reach_the_server(bridge: Bridge, caplog: pytest.LogCaptureFixture) -> None:
    caplog.handler.addFilter(request_context.ContextFilter())
    caplog.set_level(logging.INFO)
    job = JobRef()
    await bridge.create(job, headers=job.headers(ActivityId="activity-42", RequestId="request-42"))
    server_lines = [
        record
        for record in caplog.records
        if not record.name.startswith("fabric_jobs.rest_bridge") and record.name.startswith("fabric_jobs")
    ]
    assert server_lines
    assert all(getattr(record, "activity_id", None) == "activity-42" for record in server_lines)
    assert all(getattr(record, "request_id", None) == "request-42" for record in server_lines)
    bridge_lines = [record for record in caplog.records if record.name.startswith("fabric_jobs.rest_bridge")]
    assert any(getattr(record, "activity_id", None) == "activity-42" for record in bridge_lines)


async def test_base_path_is_honoured(bridge: Bridge) -> None:
    job = JobRef()
    assert (await bridge.create(job)).status_code == 202
    outside = await bridge.client.get(f"http://bridge{job.path}", headers=job.headers())
    assert outside.status_code == 404
    assert outside.json()["errorCode"] == "NotFound"


async def test_unknown_path_is_404_not_found(bridge: Bridge) -> None:
    response = await bridge.client.get("/workspaces")
    assert response.status_code == 404
    assert response.json()["errorCode"] == "NotFound"


@pytest.mark.parametrize(
    ("method", "suffix", "allowed"),
    [
        ("DELETE", "", "GET, HEAD, POST"),
        ("PUT", "", "GET, HEAD, POST"),
        ("GET", "/cancel", "POST"),
        ("PATCH", "/cancel", "POST"),
    ],
)
async def test_wrong_method_is_405_allowing_every_method_of_the_path(
    bridge: Bridge, method: str, suffix: str, allowed: str
) -> None:
    job = JobRef()
    response = await bridge.client.request(method, job.path + suffix, headers=job.headers())
    assert response.status_code == 405
    assert response.json()["errorCode"] == "MethodNotAllowed"
    assert response.headers["Allow"] == allowed
    assert allowed in response.json()["message"]


@pytest.mark.parametrize(("method", "suffix"), [("GET", "/"), ("POST", "/"), ("POST", "/cancel/")])
async def test_a_trailing_slash_is_404_never_a_redirect(bridge: Bridge, method: str, suffix: str) -> None:
    job = JobRef()
    response = await bridge.client.request(
        method, job.path + suffix, headers={**job.headers(), "Host": "attacker.example"}
    )
    assert response.status_code == 404
    assert response.json()["errorCode"] == "NotFound"
    assert "location" not in response.headers


async def test_healthz(bridge: Bridge) -> None:
    response = await bridge.client.get("/healthz")
    assert response.status_code == 200


async def test_readyz_when_the_job_service_serves(bridge: Bridge) -> None:
    response = await bridge.client.get("/readyz")
    assert response.status_code == 200


async def test_openapi_document_is_the_jobs_contract_under_the_base_path(bridge: Bridge) -> None:
    response = await bridge.client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["servers"] == [{"url": BASE_PATH}]
    operations = {op["operationId"] for ops in document["paths"].values() for op in ops.values()}
    assert operations == {"Jobs_CreateItemJobInstance", "Jobs_GetItemJobInstanceState", "Jobs_CancelItemJobInstance"}
    for code in ErrorCode:
        assert f"`{code.value}`" in document["info"]["description"], f"{code.value} is not documented"
    assert document["components"] == packaged_document()["components"]


async def test_the_served_error_schema_accepts_the_error_bodies_sent(bridge: Bridge) -> None:
    document = (await bridge.client.get("/openapi.json")).json()
    assert "allOf" not in str(document["components"])
    job = JobRef()
    missing = await bridge.get(job)
    bad = await bridge.get(job.but(workspace_id="bad"))
    for body in (missing.json(), bad.json()):
        schema = {"$ref": "#/components/schemas/ErrorResponse", "components": document["components"]}
        OAS30ReadValidator(schema).validate(body)
    assert bad.json()["moreDetails"], "an error with moreDetails is checked too"


async def test_the_channel_stays_its_callers(job_server: JobServer) -> None:
    async with grpc.aio.insecure_channel(job_server.address) as channel:
        app = create_app(BridgeSettings(base_path=BASE_PATH), channel)
        async with app.router.lifespan_context(app), client_for(app) as client:
            assert (await client.get("/readyz")).status_code == 200
        assert channel.get_state() is not grpc.ChannelConnectivity.SHUTDOWN
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_unreachable_job_service_is_503_and_not_ready(job_server: JobServer) -> None:
    address = job_server.address
    await job_server.stop(0)
    settings = BridgeSettings(base_path=BASE_PATH, request_timeout_seconds=2.0)
    async with grpc.aio.insecure_channel(address) as channel, client_for(create_app(settings, channel)) as client:
        response = await Bridge(client).get(JobRef())
        assert response.status_code == 503
        body = response.json()
        assert body["errorCode"] == "ServiceUnavailable"
        assert body["isPermanent"] is False
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["errorCode"] == "ServiceUnavailable"


async def test_readyz_is_503_when_the_job_service_has_no_health_check(offline_bridge: Bridge) -> None:
    response = await offline_bridge.client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["errorCode"] == "ServiceUnavailable"


async def test_the_offline_job_service_records_what_reaches_it(
    offline_bridge: Bridge, recording_stub: RecordingStub
) -> None:
    job = JobRef()
    response = await offline_bridge.get(job)
    assert response.status_code == 500
    [call] = recording_stub.calls
    assert isinstance(call, pb.GetJobInstanceRequest)
    assert call.key.job_instance_id == job.job_instance_id


@pytest.mark.parametrize(
    ("activity_id", "request_id"),
    [(b"act\tivity", b"req-\xe9"), (b"a" * 512, b"\xe9" * 512), (b"%41 %", b"\x7f\x01")],
    ids=["tab-and-latin-1", "longest-accepted", "percent-and-control"],
)
async def test_ids_fabric_may_send_reach_the_service_over_either_channel(
    bridge: Bridge, caplog: pytest.LogCaptureFixture, activity_id: bytes, request_id: bytes
) -> None:
    caplog.handler.addFilter(request_context.ContextFilter())
    caplog.set_level(logging.INFO, logger="fabric_jobs")
    job = JobRef()
    headers = {b"ActivityId": activity_id, b"RequestId": request_id, b"x-ms-client-tenant-id": job.tenant_id.encode()}

    created = await bridge.client.post(job.path, headers=headers, json={"invokeType": "Manual"})
    got = await bridge.client.get(job.path, headers=headers)

    assert created.status_code == 202, created.text
    assert got.status_code == 200, got.text
    assert got.headers["RequestId"].encode("latin-1") == request_id
    served = [
        r
        for r in caplog.records
        if r.name == "fabric_jobs.server.edge.interceptors" and "GetJobInstance" in r.getMessage()
    ]
    assert [(r.activity_id, r.request_id) for r in served] == [  # type: ignore[attr-defined]
        (activity_id.decode("latin-1"), request_id.decode("latin-1"))
    ]


@pytest.mark.parametrize("header", ["ActivityId", "RequestId"])
async def test_an_id_over_512_characters_is_400_naming_the_header(offline_bridge: Bridge, header: str) -> None:
    job = JobRef()
    response = await offline_bridge.client.get(job.path, headers=job.headers(**{header: "x" * 513}))
    assert response.status_code == 400
    assert response.json()["messageParameters"] == [header]
