"""gRPC statuses and failures to HTTP: the rows of fabric_jobs.errors.ERRORS, the server's ErrorDetails as the body,
no internals, and the REST contract's error bodies unchanged byte for byte."""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
from collections.abc import Awaitable, Callable
from typing import Any, cast

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from starlette.types import Message

from fabric_jobs.errors import (
    ERRORS,
    INTERNAL_ERROR,
    ErrorCode,
    ErrorDetails,
    ErrorRow,
    ErrorSource,
    FabricError,
    FieldViolation,
    details_to_pb,
    invalid_request,
)
from fabric_jobs.rest_bridge.app import create_app
from fabric_jobs.rest_bridge.errors import error_body, error_response
from fabric_jobs.rest_bridge.grpc_errors import from_rpc_error
from fabric_jobs.rest_bridge.settings import BridgeSettings
from fabric_jobs.server.edge.status_codes import to_grpc_status
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc
from tests.conftest import rpc_error as failed_call
from tests.jobs import IGNORES_CANCEL, VALIDATED
from tests.rest_bridge.client import BASE_PATH, Bridge, JobRef, client_for
from tests.rest_bridge.schemas import validate


def rpc_error(code: grpc.StatusCode, message: str, *details: Any) -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata()
    if details:
        packed = []
        for detail in details:
            item = any_pb2.Any()
            item.Pack(detail)
            packed.append(item)
        status = status_pb2.Status(code=code.value[0], message=message, details=packed)
        trailing.add("grpc-status-details-bin", status.SerializeToString())
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details=message, debug_error_string=None)


GOLDEN_JOB = JobRef(
    tenant_id="00000000-0000-0000-0000-00000000000a",
    workspace_id="00000000-0000-0000-0000-00000000000b",
    item_id="00000000-0000-0000-0000-00000000000c",
    job_instance_id="00000000-0000-0000-0000-00000000000d",
)

ERROR_BODIES = json.loads((pathlib.Path(__file__).parent / "error_bodies.json").read_text("utf-8"))
"""What the bridge answers, byte for byte: as at 3fc3993, before the error table was written once."""


async def test_the_error_bodies_of_the_rest_contract_are_unchanged_byte_for_byte(channel: grpc.aio.Channel) -> None:
    app = create_app(BridgeSettings(base_path=BASE_PATH, max_body_bytes=64), channel)
    job = GOLDEN_JOB
    headers = job.headers(ActivityId="a", RequestId="r")
    async with client_for(app) as client:
        bridge = Bridge(client)
        answers = {
            "get_unknown": await bridge.get(job, headers=headers),
            "unsupported": await bridge.create(job.but(job_type="nope"), headers=headers),
        }
        assert (await bridge.create(job, headers=headers)).status_code == 202
        answers["conflict"] = await bridge.create(job, {"invokeType": "Scheduled"}, headers=headers)
        other = job.but(job_instance_id="00000000-0000-0000-0000-00000000000e")
        answers["bad_invoke"] = await bridge.create(other, {"invokeType": True}, headers=headers)
        answers["no_path"] = await client.get("/nowhere")
        answers["method"] = await client.delete(job.path, headers=headers)
        answers["media"] = await bridge.create(job, content=b"{}", headers={**headers, "Content-Type": "text/plain"})
        answers["large"] = await bridge.create(job, {"invokeType": "Manual", "creationPayload": {"x": "y" * 100}})
        answers["bad_tenant"] = await bridge.get(job, headers={**headers, "x-ms-client-tenant-id": "nope"})
    sent = [[name, answer.status_code, answer.content.decode()] for name, answer in answers.items()]
    assert sent == ERROR_BODIES["rest"]


@pytest.mark.parametrize(("code", "http", "body"), ERROR_BODIES["bare_grpc_status"])
def test_every_grpc_status_has_an_http_status_and_a_5xx_no_internals(
    code: str, http: int, body: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The HTTP statuses are the Connect protocol's (connect-go's connectCodeToHTTP)."""
    error = from_rpc_error(rpc_error(grpc.StatusCode[code], "internal detail: stack at line 12"))
    sent = error_response(error)
    assert (sent.status_code, bytes(sent.body).decode()) == (http, body)
    validate(json.loads(bytes(sent.body)), "ErrorResponse")
    if http == 500:
        assert any(record.levelno == logging.ERROR for record in caplog.records)


def test_the_table_reads_every_grpc_status_once_and_names_every_error_code() -> None:
    read = sorted(code for row in ERRORS for code in row.reads)
    assert read == sorted(set(code_pb2.Code.values()) - {code_pb2.OK})
    assert {row.code for row in ERRORS} == set(ErrorCode)
    assert {code for code, _, _ in ERROR_BODIES["bare_grpc_status"]} == {code_pb2.Code.Name(code) for code in read}


@pytest.mark.parametrize("row", [row for row in ERRORS if row.grpc_status is not None], ids=str)
def test_what_the_job_service_sends_reaches_fabric_with_its_rows_http_status(row: ErrorRow) -> None:
    """The server's map and the bridge's agree: a FabricError of each code the JobService sends, through the
    server's to_grpc_status and the bridge's from_rpc_error, is its row's HTTP status with the same details."""
    sent = FabricError(row.details("what happened", message_parameters=("p",)))
    status = to_grpc_status(sent)
    received = grpc.aio.AioRpcError(
        status.code, grpc.aio.Metadata(), grpc.aio.Metadata(*status.trailing_metadata), status.details, None
    )
    answer = from_rpc_error(received)
    if row.code == ErrorCode.INTERNAL_ERROR:
        assert (answer.status_code, answer.details) == (500, INTERNAL_ERROR)
    else:
        assert (answer.status_code, answer.details) == (row.http_status, sent.details)


def test_server_error_details_become_the_body() -> None:
    details = ErrorDetails("JobInstanceConflict", "exists", ErrorSource.USER, True, ("id",))
    error = from_rpc_error(
        rpc_error(
            grpc.StatusCode.ALREADY_EXISTS,
            "exists",
            error_details_pb2.ErrorInfo(reason="JobInstanceConflict", domain="fabric-jobs"),
            details_to_pb(details),
        )
    )
    assert error.status_code == 409
    assert error.details == details


def test_error_info_reason_is_the_fallback_code() -> None:
    error = from_rpc_error(
        rpc_error(grpc.StatusCode.NOT_FOUND, "no such job", error_details_pb2.ErrorInfo(reason="JobInstanceNotFound"))
    )
    assert (error.status_code, error.details.error_code, error.details.message) == (
        404,
        "JobInstanceNotFound",
        "no such job",
    )


def test_a_bare_status_gets_a_code_for_its_http_status() -> None:
    error = from_rpc_error(rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"))
    assert (error.status_code, error.details.error_code, error.details.is_permanent) == (504, ErrorCode.TIMEOUT, False)


async def test_a_call_over_the_deadline_is_504_timeout(channel: grpc.aio.Channel) -> None:
    settings = BridgeSettings(base_path=BASE_PATH, request_timeout_seconds=0.1)
    app = create_app(settings, channel)
    async with client_for(app) as client:
        bridge = Bridge(client)
        job = JobRef(job_type=IGNORES_CANCEL)
        await bridge.create(job)
        await bridge.wait_for(job, "InProgress")
        response = await bridge.cancel(job)
        assert response.status_code == 504
        assert response.json()["errorCode"] == "Timeout"
        assert response.json()["isPermanent"] is False


class CrashingChannel:
    """A channel whose every call raises inside the bridge, as a bug there would."""

    def unary_unary(self, *args: Any, **kwargs: Any) -> Callable[..., Awaitable[Any]]:
        async def crash(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("bridge bug with a secret")

        return crash

    unary_stream = unary_unary


async def test_an_unexpected_exception_is_500_internal_error_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(BridgeSettings(base_path=BASE_PATH), cast(grpc.aio.Channel, CrashingChannel()))
    async with client_for(app) as client:
        job = JobRef()
        response = await Bridge(client).get(job, headers=job.headers(RequestId="req-crash"))
    assert response.status_code == 500
    assert response.headers["RequestId"] == "req-crash"
    body = response.json()
    assert body["errorCode"] == "InternalError"
    assert "secret" not in response.text
    assert any(record.exc_info and "secret" in str(record.exc_info[1]) for record in caplog.records)
    assert any(record.levelno == logging.ERROR for record in caplog.records)


def assert_names_only(body: dict[str, Any], rest_name: str, grpc_name: str) -> None:
    """An InvalidRequest naming one field, by its REST name, and never by the JobService's."""
    assert body["errorCode"] == "InvalidRequest"
    assert body["messageParameters"] == [rest_name]
    assert [detail["messageParameters"] for detail in body["moreDetails"]] == [[rest_name]]
    assert f"{rest_name}: " in body["message"]
    assert grpc_name not in json.dumps(body)


def _create(
    invoke_type: pb.JobInvokeType.ValueType = pb.JOB_INVOKE_TYPE_MANUAL, **key_changes: str
) -> pb.CreateJobInstanceRequest:
    key = pb.JobInstanceKey(**{**dataclasses.asdict(JobRef()), **key_changes})
    return pb.CreateJobInstanceRequest(key=key, invoke_type=invoke_type)


@pytest.mark.parametrize(
    ("request_", "grpc_name", "rest_name"),
    [
        (_create(tenant_id="nope"), "key.tenant_id", "x-ms-client-tenant-id"),
        (_create(workspace_id="nope"), "key.workspace_id", "workspaceId"),
        (_create(item_type="has space"), "key.item_type", "itemType"),
        (_create(item_id="nope"), "key.item_id", "itemId"),
        (_create(job_type="has space"), "key.job_type", "jobType"),
        (_create(job_instance_id="nope"), "key.job_instance_id", "jobInstanceId"),
        (_create(pb.JOB_INVOKE_TYPE_UNSPECIFIED), "invoke_type", "invokeType"),
    ],
)
async def test_job_service_field_violations_reach_fabric_by_rest_name(
    channel: grpc.aio.Channel, request_: pb.CreateJobInstanceRequest, grpc_name: str, rest_name: str
) -> None:
    stub = job_service_pb2_grpc.JobServiceStub(channel)
    error = await failed_call(stub.CreateJobInstance(request_))
    assert grpc_name in (error.details() or "")
    mapped = from_rpc_error(error)
    assert mapped.status_code == 400
    assert_names_only(error_body(mapped.details), rest_name, grpc_name)


async def test_a_non_finite_number_in_the_payload_is_named_creation_payload(channel: grpc.aio.Channel) -> None:
    request = _create()
    request.creation_payload.update({"value": float("nan")})
    error = await failed_call(job_service_pb2_grpc.JobServiceStub(channel).CreateJobInstance(request))
    assert_names_only(error_body(from_rpc_error(error).details), "creationPayload", "creation_payload")


@pytest.mark.parametrize(
    ("payload", "rest_name"),
    [
        ({"durationSeconds": -1}, "creationPayload.durationSeconds"),
        ({"outcome": "Maybe"}, "creationPayload.outcome"),
        ({"colour": "blue"}, "creationPayload.colour"),
        ({"blob": "x" * 70_000}, "creationPayload"),
    ],
)
async def test_a_payload_the_job_service_rejects_is_named_by_its_rest_name(
    bridge: Bridge, payload: dict[str, Any], rest_name: str
) -> None:
    response = await bridge.create(JobRef(job_type=VALIDATED), {"invokeType": "Manual", "creationPayload": payload})
    assert response.status_code == 400
    assert_names_only(response.json(), rest_name, "creation_payload")


def test_a_bad_request_without_error_details_is_an_invalid_request_by_rest_names() -> None:
    violations = [FieldViolation("key.item_id", "must be a UUID"), FieldViolation("creation_payload.rows", "too many")]
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description) for v in violations
        ]
    )
    error = from_rpc_error(rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "bad", bad_request))
    assert error.status_code == 400
    assert error.details == invalid_request(
        [FieldViolation("itemId", "must be a UUID"), FieldViolation("creationPayload.rows", "too many")]
    )


async def test_a_client_that_disconnects_mid_body_is_an_info_line_not_an_error(
    bridge_settings: BridgeSettings, recording_stub: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(bridge_settings, recording_stub.channel())
    job = JobRef()
    headers = [(name.lower().encode(), value.encode()) for name, value in job.headers().items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": BASE_PATH + job.path,
        "raw_path": (BASE_PATH + job.path).encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [*headers, (b"content-type", b"application/json"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
    }
    incoming: list[Message] = [
        {"type": "http.request", "body": b'{"invokeType": ', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    caplog.set_level(logging.INFO, logger="fabric_jobs")
    caplog.clear()
    await app(scope, receive, send)

    assert sent == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert any("disconnected" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    assert recording_stub.calls == []
