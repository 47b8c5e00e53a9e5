"""A job's key, defined once: JobKey, and its six parts in order, each with its names at every boundary and its
rule.

Every boundary derives what it does with a key from KEY_PARTS: the bridge's path checks and field names,
the JobService's checks, the operators' JSON, the console's filters, the CLI's options, the store's columns.
"""

from __future__ import annotations

import re
from collections.abc import Callable
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
class Rule:
    """What a valid value of a key part is: `holds` tells, `text` says it after the part's name."""

    holds: Callable[[str], bool]
    text: str
    is_uuid: bool

    def canonical(self, value: str) -> str:
        """The one spelling the store keeps: UUIDs in lower case, names as given."""
        return value.lower() if self.is_uuid else value


UUID = Rule(is_uuid, UUID_RULE, is_uuid=True)
NAME = Rule(is_name, NAME_RULE, is_uuid=False)


@dataclass(frozen=True, slots=True)
class KeyPart:
    field: str
    """The JobKey attribute, the field of JobInstanceKey and JobInstanceFilter, the store's column."""
    json_name: str
    """Fabric's REST path parameter (the tenant comes in a header) and the name in the operators' JSON."""
    filter_name: str | None
    """The console's query parameter; the CLI's option is its kebab-case (--item-type). None: the part is not a
    filter there (the job instance id is named on its own)."""
    rule: Rule

    @property
    def option(self) -> str:
        """The CLI option: --tenant, --item-type."""
        assert self.filter_name is not None
        return "--" + re.sub(r"([A-Z])", r"-\1", self.filter_name).lower()

    @property
    def dest(self) -> str:
        """Where argparse puts the option's value."""
        return self.option.removeprefix("--").replace("-", "_")

    @property
    def noun(self) -> str:
        """How help text names the part: tenant, item type."""
        return self.dest.replace("_", " ")


KEY_PARTS = (
    KeyPart("tenant_id", "tenantId", "tenant", UUID),
    KeyPart("workspace_id", "workspaceId", "workspace", UUID),
    KeyPart("item_type", "itemType", "itemType", NAME),
    KeyPart("item_id", "itemId", "item", UUID),
    KeyPart("job_type", "jobType", "jobType", NAME),
    KeyPart("job_instance_id", "jobInstanceId", None, UUID),
)
KEY_FIELDS = tuple(part.field for part in KEY_PARTS)
TENANT = KEY_PARTS[0]
"""The part Fabric sends in the x-ms-client-tenant-id header."""
PATH_PARTS = KEY_PARTS[1:]
"""The parts in Fabric's REST path, in its order: /workspaces/{workspaceId}/items/{itemType}/{itemId}/..."""
FILTER_PARTS = tuple(part for part in KEY_PARTS if part.filter_name is not None)


@dataclass(frozen=True, slots=True)
class JobKey:
    """The full identity of a job instance; a key differing in any field is another job. Its fields are
    KEY_PARTS, in that order."""

    tenant_id: str
    workspace_id: str
    item_type: str
    item_id: str
    job_type: str
    job_instance_id: str

    def __str__(self) -> str:
        return f"{self.job_instance_id} ({self.item_type}/{self.job_type})"

    def fields(self) -> dict[str, str]:
        """The parts by field name: a JobInstanceKey's fields, a query's parameters."""
        return {field: getattr(self, field) for field in KEY_FIELDS}

    def to_text(self) -> str:
        """The six parts joined by '/': a procrastinate lock, a NOTIFY payload. No part holds a '/'."""
        return "/".join(getattr(self, field) for field in KEY_FIELDS)

    @classmethod
    def from_text(cls, text: str) -> JobKey | None:
        """The key `to_text` wrote, or None for text it did not write."""
        parts = text.split("/")
        if len(parts) != len(KEY_FIELDS) or not all(parts):
            return None
        return cls(*parts)


def key_to_pb(key: JobKey) -> pb.JobInstanceKey:
    return pb.JobInstanceKey(**key.fields())


def key_from_pb(key: pb.JobInstanceKey) -> JobKey:
    return JobKey(*(getattr(key, field) for field in KEY_FIELDS))
