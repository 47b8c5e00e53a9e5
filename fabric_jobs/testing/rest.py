"""An httpx client of the REST bridge that runs the bridge app over ASGI on the service's loop: no sockets."""

from __future__ import annotations

try:
    import httpx
except ImportError as exc:  # pragma: no cover - exercised through the plugin's message
    raise ImportError("the fabric_jobs REST client needs httpx: pip install 'fabric-jobs[testing]' (or httpx)") from exc
from starlette.types import ASGIApp

from fabric_jobs.client._loop import LoopThread

BASE_URL = "http://fabric-jobs.test"
DEFAULT_TIMEOUT = 30.0


class LoopASGITransport(httpx.BaseTransport):
    """Hands each request to httpx.ASGITransport on `loop`'s thread and waits for the whole response."""

    def __init__(self, app: ASGIApp, loop: LoopThread, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._transport = httpx.ASGITransport(app=app)
        self._loop = loop
        self._timeout = timeout

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        status, headers, content = self._loop.run(self._send(request), self._timeout)
        return httpx.Response(status, headers=headers, content=content, request=request)

    async def _send(self, request: httpx.Request) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        response = await self._transport.handle_async_request(request)
        content = await response.aread()
        return response.status_code, response.headers.raw, content


def rest_client(app: ASGIApp, loop: LoopThread) -> httpx.Client:
    return httpx.Client(transport=LoopASGITransport(app, loop), base_url=BASE_URL)
