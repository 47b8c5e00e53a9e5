"""What runs the jobs of a JobService or a worker, chosen by the store.

SQLite (the embedded default): a LocalDispatch, handlers in this process. PostgreSQL: a
ProcrastinateDispatch that queues jobs for workers, a ChangeListener that hears every process's
changes, and, where this process runs handlers (`serve`, `worker`), a procrastinate Worker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fabric_jobs.server.change_listener import ChangeListener
from fabric_jobs.server.changes import ChangeFeed
from fabric_jobs.server.dispatch import Dispatch
from fabric_jobs.server.local_dispatch import LocalDispatch
from fabric_jobs.server.procrastinate_dispatch import ProcrastinateDispatch, new_app
from fabric_jobs.server.registry import JobRegistry
from fabric_jobs.server.settings import ServiceSettings
from fabric_jobs.server.store import JobStore
from fabric_jobs.server.store.postgresql import PostgresConnector
from fabric_jobs.server.worker import Worker


@contextlib.asynccontextmanager
async def running_execution(
    store: JobStore, registry: JobRegistry, feed: ChangeFeed, settings: ServiceSettings, *, run_handlers: bool
) -> AsyncIterator[Dispatch]:
    """Start what runs jobs on the open `store`; on exit stop it, handlers getting the shutdown grace."""
    connector = store.connector
    if not isinstance(connector, PostgresConnector):
        local = LocalDispatch(store, registry, feed, settings)
        await local.start()
        try:
            yield local
        finally:
            await local.stop()
        return
    app = new_app(connector.url)
    await app.open_async()
    listener = ChangeListener(connector.url, feed, origin=connector.origin)
    dispatch = ProcrastinateDispatch(app, store, feed, lease_seconds=settings.lease_seconds)
    stop_worker = asyncio.Event()
    worker_run: asyncio.Task[None] | None = None
    try:
        await listener.start()
        await dispatch.start()
        if run_handlers:
            worker = Worker(app, store, registry, feed, settings, concurrency=settings.worker_concurrency)
            worker_run = asyncio.create_task(worker.run(stop_worker), name="worker")
        yield dispatch
    finally:
        stop_worker.set()
        if worker_run is not None:
            await worker_run
        await dispatch.stop()
        await listener.stop()
        await app.close_async()
