"""What the store's callers pass and catch: listing queries and filters, and StoreError."""

from __future__ import annotations

from dataclasses import dataclass

from fabric_jobs.server.model import JobStatus


class StoreError(Exception):
    """The database failed or is misconfigured. The driver's error is kept as __cause__."""


@dataclass(frozen=True, slots=True)
class ListQuery:
    tenant_id: str
    workspace_id: str | None = None
    item_type: str | None = None
    item_id: str | None = None
    job_type: str | None = None
    statuses: frozenset[JobStatus] = frozenset()
    page_size: int = 100
    page_token: str | None = None


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs an admin listing or count covers, across tenants; None (or no statuses) means any."""

    tenant_id: str | None = None
    workspace_id: str | None = None
    item_type: str | None = None
    item_id: str | None = None
    job_type: str | None = None
    job_instance_id: str | None = None
    statuses: frozenset[JobStatus] = frozenset()
    created_since_ms: int | None = None


@dataclass(frozen=True, slots=True)
class SearchQuery:
    filter: JobFilter = JobFilter()
    page_size: int = 100
    page_token: str | None = None
