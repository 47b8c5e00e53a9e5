"""What a database URL names: sqlite:///path/to/file.db (or sqlite:///:memory:), or
postgresql://user@host:port/dbname (also postgres://)."""

from __future__ import annotations

from fabric_jobs.server.store import JobStore, StoreError


def open_store(url: str) -> JobStore:
    """The store of a database URL (not yet open). Raises StoreError for a URL it cannot use."""
    if url.startswith("sqlite:///"):
        from fabric_jobs.server.store.sqlite import SqliteConnector

        return JobStore(SqliteConnector(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        from fabric_jobs.server.store.postgresql import PostgresConnector

        return JobStore(PostgresConnector(url))
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise StoreError(
        f"unsupported database URL scheme {scheme!r}: use sqlite:///path/to/file.db or postgresql://host:port/dbname"
    )
