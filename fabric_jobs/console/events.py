"""GET /console/api/events: server-sent events, one `change` event per job change (AdminService
WatchJobInstanceChanges), a comment every HEARTBEAT_SECONDS to keep proxies from closing the stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

from starlette.responses import Response, StreamingResponse

from fabric_jobs.admin_json import job_json
from fabric_jobs.client import AdminClient, JobFilter, JobsError, JobState

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
_END = object()


class EventStream:
    def __init__(self, admin: AdminClient, stop: asyncio.Event) -> None:
        self._admin = admin
        self._stop = stop

    def response(self, job_filter: JobFilter) -> Response:
        return StreamingResponse(
            self._events(job_filter),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def _events(self, job_filter: JobFilter) -> AsyncIterator[str]:
        changes: asyncio.Queue[object] = asyncio.Queue()
        reader = asyncio.create_task(self._read(job_filter, changes))
        stopping = asyncio.create_task(self._stop.wait())
        try:
            yield "retry: 2000\n: watching\n\n"
            while not self._stop.is_set():
                getting = asyncio.create_task(changes.get())
                done, _ = await asyncio.wait(
                    {getting, stopping}, timeout=HEARTBEAT_SECONDS, return_when="FIRST_COMPLETED"
                )
                if getting not in done:
                    getting.cancel()
                    if stopping in done:
                        return
                    yield ": still watching\n\n"
                    continue
                item = getting.result()
                if item is _END:
                    yield "event: end\ndata: {}\n\n"
                    return
                assert isinstance(item, JobState)
                yield f"event: change\ndata: {json.dumps(job_json(item))}\n\n"
        finally:
            stopping.cancel()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _read(self, job_filter: JobFilter, changes: asyncio.Queue[object]) -> None:
        try:
            async for job in self._admin.watch_changes(job_filter):
                changes.put_nowait(job)
        except JobsError as exc:
            logger.warning("console: the change stream failed: %s", exc)
        changes.put_nowait(_END)
