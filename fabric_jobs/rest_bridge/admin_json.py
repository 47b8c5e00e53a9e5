"""Job instances as operators read them in JSON (the console, `fabric-jobs jobs --json`): Fabric's names and times."""

from __future__ import annotations

from typing import Any

from fabric_jobs.errors import details_from_pb
from fabric_jobs.rest_bridge.errors import error_body
from fabric_jobs.rest_bridge.mapping import STATUS_NAMES, format_time
from fabric_jobs.v1 import admin_service_pb2 as admin_pb
from fabric_jobs.v1 import job_service_pb2 as pb

STATUS_BY_NAME = {name.lower(): status for status, name in STATUS_NAMES.items()}
INVOKE_TYPE_NAMES: dict[pb.JobInvokeType.ValueType, str] = {
    pb.JOB_INVOKE_TYPE_UNKNOWN_FUTURE_VALUE: "UnknownFutureValue",
    pb.JOB_INVOKE_TYPE_SCHEDULED: "Scheduled",
    pb.JOB_INVOKE_TYPE_MANUAL: "Manual",
}


def status_name(status: pb.JobInstanceStatus.ValueType) -> str:
    return STATUS_NAMES.get(status, "Unknown")


def key_json(key: pb.JobInstanceKey) -> dict[str, str]:
    return {
        "tenantId": key.tenant_id,
        "workspaceId": key.workspace_id,
        "itemType": key.item_type,
        "itemId": key.item_id,
        "jobType": key.job_type,
        "jobInstanceId": key.job_instance_id,
    }


def job_json(instance: pb.JobInstance) -> dict[str, Any]:
    job: dict[str, Any] = {
        **key_json(instance.key),
        "status": status_name(instance.status),
        "invokeType": INVOKE_TYPE_NAMES.get(instance.invoke_type, "Unknown"),
        "createTimeUtc": format_time(instance.create_time),
        "cancelRequested": instance.cancel_requested,
    }
    if instance.HasField("start_time"):
        job["startTimeUtc"] = format_time(instance.start_time)
    if instance.HasField("end_time"):
        job["endTimeUtc"] = format_time(instance.end_time)
    if instance.HasField("error_details"):
        job["errorDetails"] = error_body(details_from_pb(instance.error_details))
    return job


def transition_json(transition: admin_pb.JobInstanceTransition) -> dict[str, Any]:
    return {
        "status": status_name(transition.status),
        "cancelRequested": transition.cancel_requested,
        "timeUtc": format_time(transition.time),
    }


def counts_json(response: admin_pb.CountJobInstancesResponse) -> dict[str, Any]:
    return {"counts": {status_name(entry.status): entry.count for entry in response.counts}, "total": response.total}
