"""Job instances as operators read them in JSON (the console, `fabric-jobs jobs --json`): Fabric's names and times."""

from __future__ import annotations

from typing import Any

from fabric_jobs.keys import KEY_PARTS
from fabric_jobs.rest_bridge.mapping import STATUS_NAMES, format_time, times_and_error
from fabric_jobs.rest_bridge.validation import INVOKE_TYPES
from fabric_jobs.v1 import admin_service_pb2 as admin_pb
from fabric_jobs.v1 import job_service_pb2 as pb

STATUS_BY_NAME = {name.lower(): status for status, name in STATUS_NAMES.items()}
INVOKE_TYPE_NAMES = {invoke_type: name for name, invoke_type in INVOKE_TYPES.items() if isinstance(name, str)}


def status_name(status: pb.JobInstanceStatus.ValueType) -> str:
    return STATUS_NAMES.get(status, "Unknown")


def key_json(key: pb.JobInstanceKey) -> dict[str, str]:
    return {part.json_name: getattr(key, part.field) for part in KEY_PARTS}


def job_json(instance: pb.JobInstance) -> dict[str, Any]:
    return {
        **key_json(instance.key),
        "status": status_name(instance.status),
        "invokeType": INVOKE_TYPE_NAMES.get(instance.invoke_type, "Unknown"),
        "createTimeUtc": format_time(instance.create_time),
        "cancelRequested": instance.cancel_requested,
        **times_and_error(instance),
    }


def transition_json(transition: admin_pb.JobInstanceTransition) -> dict[str, Any]:
    return {
        "status": status_name(transition.status),
        "cancelRequested": transition.cancel_requested,
        "timeUtc": format_time(transition.time),
    }


def counts_json(response: admin_pb.CountJobInstancesResponse) -> dict[str, Any]:
    return {"counts": {status_name(entry.status): entry.count for entry in response.counts}, "total": response.total}
