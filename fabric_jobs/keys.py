"""A job's key (JobKey) and what a valid part of it is, for both boundaries: ids are UUIDs, item and job types
are names."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fabric_jobs.v1 import job_service_pb2 as pb

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,255}")

UUID_RULE = "must be a UUID"
NAME_RULE = "must be 1 to 256 letters, digits, '.', '_' or '-', starting with a letter or digit"


def is_uuid(value: str) -> bool:
    return _UUID.fullmatch(value) is not None


def is_name(value: str) -> bool:
    """An itemType or jobType."""
    return _NAME.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class JobKey:
    """The full identity of a job instance; a key differing in any field is another job."""

    tenant_id: str
    workspace_id: str
    item_type: str
    item_id: str
    job_type: str
    job_instance_id: str

    def __str__(self) -> str:
        return f"{self.job_instance_id} ({self.item_type}/{self.job_type})"

    def to_text(self) -> str:
        """The six parts joined by '/': a procrastinate lock, a NOTIFY payload. No part holds a '/'."""
        return "/".join(
            (self.tenant_id, self.workspace_id, self.item_type, self.item_id, self.job_type, self.job_instance_id)
        )

    @classmethod
    def from_text(cls, text: str) -> JobKey | None:
        """The key `to_text` wrote, or None for text it did not write."""
        parts = text.split("/")
        if len(parts) != 6 or not all(parts):
            return None
        tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id = parts
        return cls(tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id)


def key_to_pb(key: JobKey) -> pb.JobInstanceKey:
    return pb.JobInstanceKey(
        tenant_id=key.tenant_id,
        workspace_id=key.workspace_id,
        item_type=key.item_type,
        item_id=key.item_id,
        job_type=key.job_type,
        job_instance_id=key.job_instance_id,
    )


def key_from_pb(key: pb.JobInstanceKey) -> JobKey:
    return JobKey(key.tenant_id, key.workspace_id, key.item_type, key.item_id, key.job_type, key.job_instance_id)
