"""Fabric's JSON to JobService messages and back."""

from __future__ import annotations

import time
from typing import Any

from google.protobuf import timestamp_pb2

from fabric_jobs.errors import details_from_pb
from fabric_jobs.keys import KEY_PARTS
from fabric_jobs.rest_bridge.errors import error_body
from fabric_jobs.rest_bridge.validation import TENANT_HEADER, CreateBody
from fabric_jobs.status import STATUS_FROM_PB
from fabric_jobs.v1 import job_service_pb2 as pb

STATUS_NAMES: dict[pb.JobInstanceStatus.ValueType, str] = {
    value: status.value for value, status in STATUS_FROM_PB.items()
}


REST_FIELD_BY_GRPC_FIELD = {
    **{f"key.{part.field}": part.json_name for part in KEY_PARTS},
    "key.tenant_id": TENANT_HEADER,
    "invoke_type": "invokeType",
    "creation_payload": "creationPayload",
    "creation_payload_json": "creationPayload",
}


def rest_field(grpc_field: str) -> str:
    """The name Fabric knows a request field by: creation_payload.rows is creationPayload.rows."""
    for grpc_name, rest_name in REST_FIELD_BY_GRPC_FIELD.items():
        if grpc_field == grpc_name or grpc_field.startswith(grpc_name + "."):
            return rest_name + grpc_field.removeprefix(grpc_name)
    return grpc_field


def create_request(key: pb.JobInstanceKey, body: CreateBody) -> pb.CreateJobInstanceRequest:
    request = pb.CreateJobInstanceRequest(key=key, invoke_type=body.invoke_type)
    if body.creation_payload_json is not None:
        request.creation_payload_json = body.creation_payload_json
    return request


def format_time(timestamp: timestamp_pb2.Timestamp) -> str:
    """UTC, ISO 8601, exactly three fractional digits and Z: 2023-12-10T14:41:39.412Z."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp.seconds))
    return f"{seconds}.{timestamp.nanos // 1_000_000:03d}Z"


def job_state(instance: pb.JobInstance) -> dict[str, Any]:
    """Fabric's ItemJobInstanceState."""
    status = STATUS_NAMES.get(instance.status)
    if status is None:
        raise ValueError(f"JobService sent a job instance without a status ({instance.status})")
    return {"status": status, **times_and_error(instance)}


def times_and_error(instance: pb.JobInstance) -> dict[str, Any]:
    """startTimeUtc, endTimeUtc and errorDetails, each where the job instance has it."""
    fields: dict[str, Any] = {}
    if instance.HasField("start_time"):
        fields["startTimeUtc"] = format_time(instance.start_time)
    if instance.HasField("end_time"):
        fields["endTimeUtc"] = format_time(instance.end_time)
    if instance.HasField("error_details"):
        fields["errorDetails"] = error_body(details_from_pb(instance.error_details))
    return fields
