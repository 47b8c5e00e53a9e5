"""Requests the bridge rejects itself: each a 4xx ErrorResponse naming what was wrong, and nothing reaches gRPC."""

from __future__ import annotations

from typing import Any

import pytest

from tests.rest_bridge.client import Bridge, JobRef
from tests.rest_bridge.conftest import RecordingStub

NOT_A_UUID = "not-a-uuid"


def assert_names(body: dict[str, Any], field: str, code: str = "InvalidRequest") -> None:
    assert body["errorCode"] == code
    assert body["source"] == "User"
    assert body["isPermanent"] is True
    assert field in body["messageParameters"]
    if code == "InvalidRequest":
        assert any(field in detail.get("messageParameters", []) for detail in body["moreDetails"])


@pytest.fixture(autouse=True)
def _nothing_reaches_grpc(recording_stub: RecordingStub) -> Any:
    yield
    assert recording_stub.calls == []


BAD_PATH_PARAMETERS = [
    *(
        (field, attribute, value)
        for field, attribute in [
            ("workspaceId", "workspace_id"),
            ("itemId", "item_id"),
            ("jobInstanceId", "job_instance_id"),
        ]
        for value in (NOT_A_UUID, "5f8c7e2a-3b1d-4c6e-9a0f-1e2d3c4b2d57%0A")
    ),
    *(
        (field, attribute, value)
        for field, attribute in [("itemType", "item_type"), ("jobType", "job_type")]
        for value in ("has space", "-leading", "a" * 257, "Test.Item%0A", "é")
    ),
]


@pytest.mark.parametrize(("field", "attribute", "value"), BAD_PATH_PARAMETERS)
@pytest.mark.parametrize("call", ["create", "get", "cancel"])
async def test_path_ids_must_be_uuids_and_types_names(
    offline_bridge: Bridge, field: str, attribute: str, value: str, call: str
) -> None:
    response = await getattr(offline_bridge, call)(JobRef().but(**{attribute: value}))
    assert response.status_code == 400
    body = response.json()
    assert_names(body, field)
    assert body["messageParameters"] == [field]


@pytest.mark.parametrize("call", ["create", "get", "cancel"])
async def test_the_tenant_header_is_required(offline_bridge: Bridge, call: str) -> None:
    """ActivityId and RequestId are generated when absent (test_tolerant_requests.py); the tenant is not."""
    header = "x-ms-client-tenant-id"
    job = JobRef()
    response = await getattr(offline_bridge, call)(job, headers=job.headers(**{header: None}))
    assert response.status_code == 400
    assert_names(response.json(), header)


async def test_tenant_header_must_be_a_uuid(offline_bridge: Bridge) -> None:
    job = JobRef()
    response = await offline_bridge.get(job, headers=job.headers(**{"x-ms-client-tenant-id": NOT_A_UUID}))
    assert response.status_code == 400
    assert_names(response.json(), "x-ms-client-tenant-id")


async def test_every_bad_field_is_named_at_once(offline_bridge: Bridge) -> None:
    job = JobRef(workspace_id=NOT_A_UUID, item_id=NOT_A_UUID)
    response = await offline_bridge.get(job, headers=job.headers(ActivityId="a" * 513))
    assert response.status_code == 400
    assert set(response.json()["messageParameters"]) == {"workspaceId", "itemId", "ActivityId"}


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"", "body"),
        (b"   ", "body"),
        (b"{not json", "body"),
        (b'{"invokeType": NaN}', "body"),
        (b"\xff\xfe\x00garbage", "body"),
        (b"[" * 5000 + b"]" * 5000, "body"),
        (b'["Manual"]', "body"),
        (b'"Manual"', "body"),
        (b"null", "body"),
        (b"{}", "invokeType"),
        (b'{"InvokeType": "Manual"}', "invokeType"),
        (b'{"invokeType": true}', "invokeType"),
        (b'{"invokeType": false}', "invokeType"),
        (b'{"invokeType": null}', "invokeType"),
        (b'{"invokeType": ["Manual"]}', "invokeType"),
        (b'{"invokeType": {"value": "Manual"}}', "invokeType"),
        (b'{"invokeType": "Manual", "creationPayload": []}', "creationPayload"),
        (b'{"invokeType": "Manual", "creationPayload": "x"}', "creationPayload"),
        (b'{"invokeType": "Manual", "creationPayload": 1}', "creationPayload"),
        (b'{"invokeType": "Manual", "creationPayload": ' + b'{"a":' * 40 + b"{}" + b"}" * 40 + b"}", "creationPayload"),
        (b'{"invokeType": null, "extra": 1}', "invokeType"),
    ],
)
async def test_create_body(offline_bridge: Bridge, content: bytes, field: str) -> None:
    job = JobRef()
    headers = {**job.headers(), "Content-Type": "application/json"}
    response = await offline_bridge.create(job, headers=headers, content=content)
    assert response.status_code == 400
    assert_names(response.json(), field)


async def test_create_without_body_is_400(offline_bridge: Bridge) -> None:
    job = JobRef()
    response = await offline_bridge.create(job, content=b"")
    assert response.status_code == 400
    assert_names(response.json(), "body")


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/x-www-form-urlencoded"])
async def test_create_with_a_non_json_content_type_is_415(offline_bridge: Bridge, content_type: str) -> None:
    job = JobRef()
    headers = {**job.headers(), "Content-Type": content_type}
    response = await offline_bridge.create(job, headers=headers, content=b'{"invokeType": "Manual"}')
    assert response.status_code == 415
    assert_names(response.json(), "Content-Type", code="UnsupportedMediaType")


async def test_body_over_the_limit_by_content_length_is_413(offline_bridge: Bridge) -> None:
    job = JobRef()
    body = {"invokeType": "Manual", "creationPayload": {"x": "a" * 200_000}}
    response = await offline_bridge.create(job, body)
    assert response.status_code == 413
    assert_names(response.json(), "body", code="PayloadTooLarge")


async def test_body_over_the_limit_while_streaming_is_413(offline_bridge: Bridge) -> None:
    async def chunks() -> Any:
        for _ in range(100):
            yield b" " * 4096

    job = JobRef()
    response = await offline_bridge.create(job, content=chunks())
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert_names(response.json(), "body", code="PayloadTooLarge")


async def test_bad_content_length_is_400(offline_bridge: Bridge) -> None:
    job = JobRef()
    headers = {**job.headers(), "Content-Length": "abc"}
    response = await offline_bridge.create(job, headers=headers, content=b'{"invokeType": 1}')
    assert response.status_code == 400
    assert_names(response.json(), "Content-Length")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"invokeType": "Manual", "creationPayload": {"note": "\\ud800"}}', "creationPayload"),
        (b'{"invokeType": "Manual", "creationPayload": {"\\ud800": 1}}', "creationPayload"),
        (b'{"invokeType": "Manual", "creationPayload": {"n": ' + b"9" * 400 + b"}}", "creationPayload"),
    ],
    ids=["lone-surrogate-value", "lone-surrogate-key", "400-digit-integer"],
)
async def test_json_that_cannot_become_a_payload_is_400_naming_the_field(
    offline_bridge: Bridge, recording_stub: RecordingStub, raw: bytes, field: str
) -> None:
    job = JobRef()
    response = await offline_bridge.create(
        job, content=raw, headers={**job.headers(), "Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["errorCode"] == "InvalidRequest"
    assert any(field in parameter for parameter in body["messageParameters"]), body
    assert recording_stub.calls == []
