"""Where job instances live: one JobStore over a connector to SQLite or PostgreSQL."""

from fabric_jobs.server.store.base import JobFilter, ListQuery, SearchQuery, StoreError
from fabric_jobs.server.store.job_store import JobStore

__all__ = ["JobFilter", "JobStore", "ListQuery", "SearchQuery", "StoreError"]
