"""What a database URL names, decided in this one place: the store, how jobs are executed, whether workers are
separate processes. sqlite:///path/to/file.db (or sqlite:///:memory:), or postgresql://user@host:port/dbname
(also postgres://)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from fabric_jobs.server.settings import ServiceSettings
from fabric_jobs.server.store import JobStore, StoreError

if TYPE_CHECKING:
    from fabric_jobs.registry import JobRegistry
    from fabric_jobs.server.execution.dispatch import Dispatch
    from fabric_jobs.server.store.changes import ChangeFeed

SQLITE_SCHEME = "sqlite:///"
POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")


class StartExecution(Protocol):
    def __call__(
        self, store: JobStore, registry: JobRegistry, feed: ChangeFeed, settings: ServiceSettings, run_handlers: bool, /
    ) -> AbstractAsyncContextManager[Dispatch]: ...


@dataclass(frozen=True, slots=True)
class Backend:
    store: JobStore
    """The store, not yet open."""
    separate_workers: bool
    """Whether `fabric-jobs worker` processes can run the jobs (PostgreSQL). Where not (SQLite), handlers always run
    in the process that serves the JobService."""
    _start_execution: StartExecution

    def execution(
        self, registry: JobRegistry, feed: ChangeFeed, settings: ServiceSettings, *, run_handlers: bool
    ) -> AbstractAsyncContextManager[Dispatch]:
        """What runs the jobs of the open store, as an async context (stopped on exit). `run_handlers` False leaves
        the jobs to separate workers, where there are any."""
        return self._start_execution(self.store, registry, feed, settings, run_handlers)


def database_url_problem(url: str) -> str | None:
    """Why `url` names no database the service can use, or None."""
    if not url.startswith((SQLITE_SCHEME, *POSTGRESQL_SCHEMES)):
        return f"must be sqlite:///path/to/file.db or postgresql://user@host:port/dbname, not {url!r}"
    if url.startswith(SQLITE_SCHEME) and not url.removeprefix(SQLITE_SCHEME).strip():
        return (
            "sqlite:/// needs a file path, e.g. sqlite:///./fabric-jobs.db "
            "(sqlite:///:memory: for a database that lives only as long as the process)"
        )
    return None


def open_backend(url: str) -> Backend:
    """The backend of a database URL; nothing connects before `store.open()`. StoreError for a URL it cannot use.

    Each database's modules are imported here, when its URL is opened: the CLI checks URLs without loading them.
    """
    problem = database_url_problem(url)
    if problem is not None:
        raise StoreError(f"database URL: {problem}")
    if url.startswith(SQLITE_SCHEME):
        from fabric_jobs.server.store.sqlite import SqliteConnector

        return Backend(JobStore(SqliteConnector(url.removeprefix(SQLITE_SCHEME))), False, _local)
    from fabric_jobs.server.execution.starter import procrastinate_execution
    from fabric_jobs.server.store.postgresql import PostgresConnector

    connector = PostgresConnector(url)

    def on_procrastinate(
        store: JobStore, registry: JobRegistry, feed: ChangeFeed, settings: ServiceSettings, run_handlers: bool
    ) -> AbstractAsyncContextManager[Dispatch]:
        return procrastinate_execution(
            connector.url, store, registry, feed, settings, run_handlers=run_handlers, origin=connector.origin
        )

    return Backend(JobStore(connector), True, on_procrastinate)


def open_store(url: str) -> JobStore:
    """The store alone, not yet open (to migrate it, or to read it without running jobs)."""
    return open_backend(url).store


def _local(
    store: JobStore, registry: JobRegistry, feed: ChangeFeed, settings: ServiceSettings, run_handlers: bool
) -> AbstractAsyncContextManager[Dispatch]:
    """Handlers run in this process whatever `run_handlers` says: no other process can run them."""
    from fabric_jobs.server.execution.starter import local_execution

    return local_execution(store, registry, feed, settings)
