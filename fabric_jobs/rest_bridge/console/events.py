"""GET /console/api/events: server-sent events, one `change` event per job change (AdminService
WatchJobInstanceChanges), a comment every HEARTBEAT_SECONDS to keep proxies from closing the stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

import grpc
from starlette.responses import Response, StreamingResponse

from fabric_jobs.rest_bridge.admin_json import job_json
from fabric_jobs.v1 import admin_service_pb2 as admin_pb
from fabric_jobs.v1 import admin_service_pb2_grpc as admin_grpc

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
_END = object()


class EventStream:
    def __init__(self, admin: admin_grpc.AdminServiceAsyncStub, stop: asyncio.Event) -> None:
        self._admin = admin
        self._stop = stop

    def response(self, job_filter: admin_pb.JobInstanceFilter) -> Response:
        return StreamingResponse(
            self._events(job_filter),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def _events(self, job_filter: admin_pb.JobInstanceFilter) -> AsyncIterator[str]:
        changes: asyncio.Queue[object] = asyncio.Queue()
        request = admin_pb.WatchJobInstanceChangesRequest(filter=job_filter)
        reader = asyncio.create_task(self._read(request, changes))
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
                assert isinstance(item, admin_pb.WatchJobInstanceChangesResponse)
                yield f"event: change\ndata: {json.dumps(job_json(item.job_instance))}\n\n"
        finally:
            stopping.cancel()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _read(self, request: admin_pb.WatchJobInstanceChangesRequest, changes: asyncio.Queue[object]) -> None:
        try:
            async for reply in self._admin.WatchJobInstanceChanges(request):
                changes.put_nowait(reply)
        except grpc.aio.AioRpcError as exc:
            logger.warning("console: the change stream failed: %s %s", exc.code().name, exc.details())
        changes.put_nowait(_END)
