"""Job instances as operators read them in JSON (the console, `fabric-jobs jobs --json`): Fabric's names and times,
from the client's results."""

from __future__ import annotations

import datetime
from typing import Any

from fabric_jobs.client import Counts, JobState, Transition
from fabric_jobs.identity import Caller
from fabric_jobs.keys import KEY_PARTS, JobKey
from fabric_jobs.rest_bridge.errors import error_body
from fabric_jobs.status import JobStatus

STATUS_BY_NAME = {status.value.lower(): status for status in JobStatus}


def format_datetime(moment: datetime.datetime) -> str:
    """UTC, ISO 8601, exactly three fractional digits and Z, as Fabric's times: 2023-12-10T14:41:39.412Z."""
    utc = moment.astimezone(datetime.UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def key_json(key: JobKey) -> dict[str, str]:
    return {part.json_name: getattr(key, part.field) for part in KEY_PARTS}


def job_json(job: JobState) -> dict[str, Any]:
    document: dict[str, Any] = {
        **key_json(job.key),
        "status": job.status.value,
        "invokeType": job.invoke_type.value,
        "createTimeUtc": format_datetime(job.create_time),
        "cancelRequested": job.cancel_requested,
    }
    if job.start_time is not None:
        document["startTimeUtc"] = format_datetime(job.start_time)
    if job.end_time is not None:
        document["endTimeUtc"] = format_datetime(job.end_time)
    if job.error_details is not None:
        document["errorDetails"] = error_body(job.error_details)
    if job.caller is not None:
        document["caller"] = caller_json(job.caller)
    return document


def caller_json(caller: Caller) -> dict[str, str]:
    """Who asked for the job (never a token)."""
    fields = {"tenantId": caller.tenant_id, "objectId": caller.object_id, "appId": caller.app_id}
    if caller.user_principal_name:
        fields["userPrincipalName"] = caller.user_principal_name
    return fields


def transition_json(transition: Transition) -> dict[str, Any]:
    return {
        "status": transition.status.value,
        "cancelRequested": transition.cancel_requested,
        "timeUtc": format_datetime(transition.time),
    }


def counts_json(counts: Counts) -> dict[str, Any]:
    return {"counts": {status.value: count for status, count in counts.by_status.items()}, "total": counts.total}
