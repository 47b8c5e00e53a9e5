"""Where job instances live. `open_store(url)` picks the implementation from the database URL."""

from fabric_jobs.server.store.base import JobStore, ListQuery, StoreError, open_store

__all__ = ["JobStore", "ListQuery", "StoreError", "open_store"]
