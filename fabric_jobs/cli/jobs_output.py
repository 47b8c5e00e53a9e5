"""How `fabric-jobs jobs` prints jobs for people: a table, a job's card, a line per change."""

from __future__ import annotations

from collections.abc import Sequence

from fabric_jobs.admin_json import job_json, transition_json
from fabric_jobs.client import JobState, Transition

TABLE_COLUMNS = ("CREATED (UTC)", "STATUS", "JOB INSTANCE", "JOB TYPE", "TENANT")


def _short_time(text: str) -> str:
    return text.replace("T", " ").removesuffix("Z")[:19] if text else "-"


def _status(job: dict[str, object]) -> str:
    status = str(job["status"])
    return f"{status} (cancelling)" if job["cancelRequested"] and status == "InProgress" else status


def _caller(caller: object) -> str:
    if not isinstance(caller, dict):
        return "-"
    who = caller["objectId"]
    if "userPrincipalName" in caller:
        who = f"{caller['userPrincipalName']} ({who})"
    return f"{who}, tenant {caller['tenantId']}, app {caller['appId']}"


def table(instances: Sequence[JobState]) -> str:
    rows = [TABLE_COLUMNS]
    for instance in instances:
        job = job_json(instance)
        rows.append(
            (
                _short_time(str(job["createTimeUtc"])),
                _status(job),
                str(job["jobInstanceId"]),
                str(job["jobType"]),
                str(job["tenantId"]),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(TABLE_COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def card(instance: JobState, transitions: Sequence[Transition] = ()) -> str:
    job = job_json(instance)
    lines = [
        ("Job instance", job["jobInstanceId"]),
        ("Status", _status(job)),
        ("Tenant", job["tenantId"]),
        ("Workspace", job["workspaceId"]),
        ("Item", f"{job['itemType']} {job['itemId']}"),
        ("Job type", job["jobType"]),
        ("Invoked", job["invokeType"]),
        ("Created", job["createTimeUtc"]),
        ("Started", job.get("startTimeUtc", "-")),
        ("Ended", job.get("endTimeUtc", "-")),
        ("Asked by", _caller(job.get("caller"))),
    ]
    error = job.get("errorDetails")
    if isinstance(error, dict):
        permanence = "permanent" if error["isPermanent"] else "retriable"
        lines.append(("Error", f"{error['errorCode']} ({error['source']}, {permanence}): {error['message']}"))
        for detail in error.get("moreDetails", []):
            lines.append(("", f"{detail['errorCode']}: {detail['message']}"))
    text = [f"{label:<13}{value}" for label, value in lines]
    if transitions:
        text.append("History")
        for step in transitions:
            entry = transition_json(step)
            asked = "  cancel requested" if entry["cancelRequested"] and entry["status"] == "InProgress" else ""
            text.append(f"  {entry['timeUtc']}  {entry['status']}{asked}")
    return "\n".join(text)


def change_line(instance: JobState, seen_at: str) -> str:
    """A change as `watch` prints it: when it was seen, then the state."""
    job = job_json(instance)
    line = f"{seen_at}  {_status(job)}"
    error = job.get("errorDetails")
    if isinstance(error, dict):
        line += f"  {error['errorCode']}: {error['message']}"
    return line
