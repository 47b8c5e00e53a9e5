from __future__ import annotations

import pytest
from google.protobuf import timestamp_pb2

from fabric_jobs.errors import ErrorDetails, ErrorSource, ExtendedInfo, details_to_pb
from fabric_jobs.rest_bridge.mapping import format_time, job_state, rest_field
from fabric_jobs.v1 import job_service_pb2 as pb
from tests.rest_bridge.schemas import validate


def test_times_have_milliseconds_and_z() -> None:
    assert format_time(timestamp_pb2.Timestamp(seconds=1702219299, nanos=412_999_999)) == "2023-12-10T14:41:39.412Z"
    assert format_time(timestamp_pb2.Timestamp(seconds=0, nanos=0)) == "1970-01-01T00:00:00.000Z"


def test_state_has_only_what_is_set() -> None:
    assert job_state(pb.JobInstance(status=pb.JOB_INSTANCE_STATUS_NOT_STARTED)) == {"status": "NotStarted"}


def test_failed_state_with_full_error_details() -> None:
    details = ErrorDetails(
        "ForecastFailed",
        "no data",
        ErrorSource.EXTERNAL,
        False,
        ("a",),
        (ExtendedInfo("Inner", "inner message", ("b",), (("name", "value"),)), ExtendedInfo("Bare", "bare")),
    )
    instance = pb.JobInstance(
        status=pb.JOB_INSTANCE_STATUS_FAILED,
        start_time=timestamp_pb2.Timestamp(seconds=1702219299, nanos=412_000_000),
        end_time=timestamp_pb2.Timestamp(seconds=1702219649, nanos=709_000_000),
        error_details=details_to_pb(details),
    )
    state = job_state(instance)
    validate(state, "ItemJobInstanceState")
    assert state == {
        "status": "Failed",
        "startTimeUtc": "2023-12-10T14:41:39.412Z",
        "endTimeUtc": "2023-12-10T14:47:29.709Z",
        "errorDetails": {
            "errorCode": "ForecastFailed",
            "message": "no data",
            "source": "External",
            "isPermanent": False,
            "messageParameters": ["a"],
            "moreDetails": [
                {
                    "errorCode": "Inner",
                    "message": "inner message",
                    "messageParameters": ["b"],
                    "additionalParameters": [{"name": "name", "value": "value"}],
                },
                {"errorCode": "Bare", "message": "bare"},
            ],
        },
    }


@pytest.mark.parametrize(
    ("grpc_field", "rest_name"),
    [
        ("key.tenant_id", "x-ms-client-tenant-id"),
        ("key.workspace_id", "workspaceId"),
        ("key.item_type", "itemType"),
        ("key.item_id", "itemId"),
        ("key.job_type", "jobType"),
        ("key.job_instance_id", "jobInstanceId"),
        ("invoke_type", "invokeType"),
        ("creation_payload", "creationPayload"),
        ("creation_payload.durationSeconds", "creationPayload.durationSeconds"),
        ("creation_payload.a.b_c", "creationPayload.a.b_c"),
        ("creation_payload_json", "creationPayload"),
        ("creation_payload_json.durationSeconds", "creationPayload.durationSeconds"),
        ("creation_payload_jsonx", "creation_payload_jsonx"),
        ("creation_payloads", "creation_payloads"),
        ("key.item_types", "key.item_types"),
        ("body", "body"),
    ],
)
def test_rest_field_names(grpc_field: str, rest_name: str) -> None:
    assert rest_field(grpc_field) == rest_name
