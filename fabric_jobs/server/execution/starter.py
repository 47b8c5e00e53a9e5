"""What runs the jobs of a JobService or a worker: one starter per database, chosen by its Backend.

SQLite (the embedded default): a LocalDispatch, handlers in this process. PostgreSQL: a
ProcrastinateDispatch that queues jobs for workers, a ChangeListener that hears every process's
changes, and, where this process runs handlers (`serve`, `worker`), a procrastinate Worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from fabric_jobs.registry import JobRegistry
from fabric_jobs.server.execution.dispatch import Dispatch
from fabric_jobs.server.execution.job_types_board import JobTypesBoard
from fabric_jobs.server.execution.local import LocalDispatch
from fabric_jobs.server.execution.on_procrastinate import ProcrastinateDispatch, new_app
from fabric_jobs.server.execution.worker import Worker, process_name
from fabric_jobs.server.settings import ServiceSettings
from fabric_jobs.server.store import JobStore
from fabric_jobs.server.store.change_listener import ChangeListener
from fabric_jobs.server.store.changes import ChangeFeed


@contextlib.asynccontextmanager
async def local_execution(
    store: JobStore, registry: JobRegistry, feed: ChangeFeed, settings: ServiceSettings
) -> AsyncIterator[Dispatch]:
    """Run jobs on handlers in this process; on exit stop them, handlers getting the shutdown grace."""
    local = LocalDispatch(store, registry, feed, settings)
    await local.start()
    try:
        yield local
    finally:
        await local.stop()


@contextlib.asynccontextmanager
async def procrastinate_execution(
    url: str,
    store: JobStore,
    registry: JobRegistry,
    feed: ChangeFeed,
    settings: ServiceSettings,
    *,
    run_handlers: bool,
    origin: str,
) -> AsyncIterator[Dispatch]:
    """Queue jobs on procrastinate in the PostgreSQL database at `url` and hear every process's changes; with
    `run_handlers`, also run a worker here. `origin`: the connector's, whose announcements this process's own
    changes carry (published here directly). On exit stop it all, handlers getting the shutdown grace."""
    app = new_app(url)
    await app.open_async()
    listener = ChangeListener(url, feed, origin=origin)
    dispatch = ProcrastinateDispatch(app, store, feed, lease_seconds=settings.lease_seconds)
    stop_worker = asyncio.Event()
    worker_run: asyncio.Task[None] | None = None
    board_name = f"{process_name()}-{uuid.uuid4().hex[:6]}"  # unique even for two services in one process
    board = JobTypesBoard(app, registry, board_name, publishes=run_handlers, lease_seconds=settings.lease_seconds)
    try:
        await listener.start()
        await dispatch.start()
        if run_handlers:
            worker = Worker(app, store, registry, feed, settings, concurrency=settings.worker_concurrency)
            worker_run = asyncio.create_task(worker.run(stop_worker), name="worker")
        await board.start()
        yield dispatch
    finally:
        await board.stop()
        stop_worker.set()
        if worker_run is not None:
            await worker_run
        await dispatch.stop()
        await listener.stop()
        await app.close_async()
