"""An HTTP/1.1 load tool on raw asyncio streams: one keep-alive connection per worker, requests prebuilt as bytes.

python -m benchmarks.http_load < spec.json      (prints one LoadResult as JSON)

It parses only the status line and Content-Length, which is all the servers measured here send.
"""

from __future__ import annotations

import asyncio
import socket

from benchmarks.measure import LoadResult, LoadSpec, drive, read_spec, write_result

ACTIVITY_ID = "8f3a2c1e-0b4d-4e6f-9a7b-1c2d3e4f5a6b"
REQUEST_ID = "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a"
_CONTENT_LENGTH = b"\r\ncontent-length:"


class HttpStatusError(Exception):
    pass


def build_request(host: str, method: str, path: str, tenant: str) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host}",
        f"ActivityId: {ACTIVITY_ID}",
        f"RequestId: {REQUEST_ID}",
        f"x-ms-client-tenant-id: {tenant}",
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


class Connection:
    """One keep-alive connection; reconnects on the next request after a failure."""

    def __init__(self, host: str, port: int, expect: bytes | None) -> None:
        self._host = host
        self._port = port
        self._expect = expect
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> bool:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
            self._writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader, writer = self._reader, self._writer
        try:
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            lowered = head.lower()
            at = lowered.find(_CONTENT_LENGTH)
            if at < 0:
                raise HttpStatusError(f"HTTP {status} without Content-Length")
            end = lowered.index(b"\r\n", at + 2)
            body = await reader.readexactly(int(lowered[at + len(_CONTENT_LENGTH) : end]))
        except BaseException:
            self.close()
            raise
        if not 200 <= status < 300:
            raise HttpStatusError(f"HTTP {status}: {body[:200].decode(errors='replace')}")
        return self._expect is None or self._expect in body

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def run(spec: LoadSpec) -> LoadResult:
    host, _, port = spec.target.rpartition(":")
    requests = [build_request(spec.target, method, path, tenant) for method, path, tenant in spec.items]
    expect = None if spec.expect is None else spec.expect.encode()
    connections = [Connection(host.strip("[]"), int(port), expect) for _ in range(spec.concurrency)]
    try:
        return await drive(spec, requests, [connection.request for connection in connections])
    finally:
        for connection in connections:
            connection.close()


def main() -> None:
    spec = read_spec()
    try:
        import uvloop
    except ImportError:
        write_result(asyncio.run(run(spec)))
    else:
        write_result(uvloop.run(run(spec)))


if __name__ == "__main__":
    main()
