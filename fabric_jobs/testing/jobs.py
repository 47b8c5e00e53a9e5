"""A job instance as a test names it (the six parts of its key), and the message of a wait that failed."""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from typing import Any

from fabric_jobs.keys import KEY_FIELDS, JobKey, key_to_pb
from fabric_jobs.v1 import job_service_pb2 as pb

TERMINAL = frozenset({"Completed", "Failed", "Cancelled"})


def _new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class JobRef:
    """A job instance's key; ids not given are fresh UUIDs."""

    item_type: str
    job_type: str
    tenant_id: str = dataclasses.field(default_factory=_new_id)
    workspace_id: str = dataclasses.field(default_factory=_new_id)
    item_id: str = dataclasses.field(default_factory=_new_id)
    job_instance_id: str = dataclasses.field(default_factory=_new_id)

    @property
    def path(self) -> str:
        """The REST path Fabric calls for this job instance (append /cancel to cancel it)."""
        return (
            f"/workspaces/{self.workspace_id}/items/{self.item_type}/{self.item_id}"
            f"/jobTypes/{self.job_type}/instances/{self.job_instance_id}"
        )

    def headers(self) -> dict[str, str]:
        """The headers Fabric sends (fresh ActivityId and RequestId), without Authorization."""
        return {"ActivityId": _new_id(), "RequestId": _new_id(), "x-ms-client-tenant-id": self.tenant_id}

    @property
    def job_key(self) -> JobKey:
        """The key as fabric_jobs.client takes it."""
        return JobKey(*(getattr(self, field) for field in KEY_FIELDS))

    @property
    def key(self) -> pb.JobInstanceKey:
        """The key as the gRPC JobService takes it."""
        return key_to_pb(self.job_key)

    def __str__(self) -> str:
        return f"{self.job_instance_id} ({self.item_type}/{self.job_type})"


def wait_failed(job: JobRef, wanted: tuple[str, ...], state: dict[str, Any], timeout: float) -> str:
    """Why a wait for `wanted` failed, with the job's last state (its errorDetails included) as Fabric sees it."""
    names = " or ".join(wanted)
    status = state.get("status")
    if status in TERMINAL and status not in wanted:
        headline = f"job {job} ended {status}, not {names} (a terminal status never changes)"
    else:
        headline = f"job {job} did not reach {names} within {timeout:g}s"
    return f"{headline}; its last state:\n{json.dumps(state, indent=2, ensure_ascii=False)}"
