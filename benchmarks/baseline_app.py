"""The floors the REST bridge is measured against: a minimal Starlette app, no gRPC hop.

python -m benchmarks.baseline_app DATABASE_URL      (sqlite:///path/to/file.db or postgresql://…)

- GET  {instance path}         store.get, answered as the bridge answers Get (ItemJobInstanceState JSON);
- POST {instance path}/cancel  what the JobService does in the store for a Cancel: store.cancel (which
                               ends a NotStarted job Cancelled), then for a running job the transition
                               to Cancelled that the stopping handler would record, and a get (no
                               handler runs here);
- GET  /constant               {"status":"Completed"}: the floor of Python HTTP on this machine.

uvicorn runs as `fabric-jobs serve` runs it: inside the program's own uvloop.run
(uvloop event loop), HTTP protocol "auto" (httptools when installed), access log off, one process.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fabric_jobs.rest_bridge.errors import error_body
from fabric_jobs.server.backend import open_store
from fabric_jobs.server.model import JobKey, JobRecord, JobStatus, now_ms

INSTANCE_PATH = "/workspaces/{workspaceId}/items/{itemType}/{itemId}/jobTypes/{jobType}/instances/{jobInstanceId}"
CONSTANT_PATH = "/constant"
TENANT_HEADER = "x-ms-client-tenant-id"
NOT_FOUND = {"errorCode": "JobInstanceNotFound", "message": "not found", "source": "User", "isPermanent": True}


def _utc(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{millis:03d}Z"


def job_state(record: JobRecord) -> dict[str, Any]:
    state: dict[str, Any] = {"status": record.status.value}
    if record.start_time_ms is not None:
        state["startTimeUtc"] = _utc(record.start_time_ms)
    if record.end_time_ms is not None:
        state["endTimeUtc"] = _utc(record.end_time_ms)
    if record.error is not None:
        state["errorDetails"] = error_body(record.error)
    return state


def _key(request: Request) -> JobKey:
    params = request.path_params
    return JobKey(
        tenant_id=request.headers.get(TENANT_HEADER, ""),
        workspace_id=params["workspaceId"],
        item_type=params["itemType"],
        item_id=params["itemId"],
        job_type=params["jobType"],
        job_instance_id=params["jobInstanceId"],
    )


def create_app(database: str) -> Starlette:
    store = open_store(database)

    async def get(request: Request) -> Response:
        record = await store.get(_key(request))
        if record is None:
            return JSONResponse(NOT_FOUND, status_code=404)
        return JSONResponse(job_state(record))

    async def cancel(request: Request) -> Response:
        key = _key(request)
        record = await store.cancel(key, now_ms())
        if record is None:
            return JSONResponse(NOT_FOUND, status_code=404)
        if not record.status.is_terminal:
            await store.transition(key, (JobStatus.IN_PROGRESS,), JobStatus.CANCELLED, at_ms=now_ms())
            record = await store.get(key) or record
        return JSONResponse(job_state(record))

    async def constant(request: Request) -> Response:
        return JSONResponse({"status": "Completed"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.open()
        try:
            yield
        finally:
            await store.close()

    routes = [
        Route(INSTANCE_PATH, get, methods=["GET"]),
        Route(INSTANCE_PATH + "/cancel", cancel, methods=["POST"]),
        Route(CONSTANT_PATH, constant, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


async def serve(database: str) -> None:
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on accepted sockets whose proto is TCP, and without
    # it uvicorn's separate header and body writes meet the client's delayed ACK (about 40 ms per response).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    sock.setblocking(False)
    config = uvicorn.Config(
        create_app(database), log_config=None, access_log=False, lifespan="on", http="auto", log_level="warning"
    )
    server = uvicorn.Server(config)
    print(f"baseline app on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    await server.serve(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database", help="URL of the database with the job instances: sqlite:///path or postgresql://…")
    uvloop.run(serve(parser.parse_args().database))


if __name__ == "__main__":
    main()
