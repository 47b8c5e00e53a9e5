"""The HTTP edge of a real `fabric-jobs serve` over raw sockets: malformed requests get a Fabric ErrorResponse
and a closed connection; stalled headers, stalled bodies and idle connections are closed within their
bounds; a request beyond the connection limit is answered 503 as Fabric expects."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import STARTUP_SECONDS, Serve, kill_if_running, launch

WAIT_SECONDS = 20
"""How long a test waits for the server to close a connection whose bound is a fraction of a second."""
JOB_PATH = (
    "/workspaces/e5ef604d-e14f-4a59-9133-75d5a0cb9334/items/Contoso.FinanceAnalytics.Forecast"
    "/b14cb7e7-d346-4751-9cfd-8c2767d53111/jobTypes/calculateForecast/instances/0f4b1e2c-7a51-4a4c-9d4b-1d2a3b4c5d6e"
)

JOB_HEADERS = (
    b"Host: x\r\nContent-Type: application/json\r\nx-ms-client-tenant-id: 7c1d1a1e-0000-4000-8000-00000000c11e\r\n"
    b"ActivityId: http-limits\r\nRequestId: http-limits\r\n"
)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, object]:
        assert self.headers["content-type"] == "application/json", self.headers
        return dict(json.loads(self.body))


def _start(tmp_path: Path, *options: str) -> Serve:
    database = f"sqlite:///{tmp_path / 'jobs.db'}"
    args = ["serve", "--dev", "--grpc-port", "0", "--rest-port", "0", "--database", database, *options]
    return launch(args, grpc=True, rest=True)


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """A service whose clients have half a second for each step and 4 KiB of headers."""
    limits = ["--http-header-timeout", "0.5", "--http-body-timeout", "0.5", "--http-keepalive-timeout", "0.5"]
    running = _start(tmp_path_factory.mktemp("quick"), *limits, "--http-max-header-bytes", "4096")
    yield running
    kill_if_running(running)


def _connect(serve: Serve) -> socket.socket:
    host, port = serve.rest_url.removeprefix("http://").split("/")[0].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=STARTUP_SECONDS)
    sock.settimeout(0.2)
    return sock


def _read_until(sock: socket.socket, done: bytes | int, buffer: bytearray, deadline: float) -> bool:
    """Read into `buffer` until it holds `done` (a marker, or a length); False at EOF."""
    while (done not in buffer) if isinstance(done, bytes) else len(buffer) < done:
        assert time.monotonic() < deadline, f"the server sent only {bytes(buffer)!r}"
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            return False
        buffer += chunk
    return True


def _response(sock: socket.socket, within: float = WAIT_SECONDS) -> Response:
    deadline = time.monotonic() + within
    buffer = bytearray()
    assert _read_until(sock, b"\r\n\r\n", buffer, deadline), f"closed after {bytes(buffer)!r}"
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in header_lines)}
    body = bytearray(rest)
    _read_until(sock, int(headers.get("content-length", "0")), body, deadline)
    return Response(int(status_line.split()[1]), headers, bytes(body))


def _closed(sock: socket.socket, within: float = WAIT_SECONDS) -> bool:
    """Whether the server closes the connection within `within` seconds (data sent before the EOF is skipped)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True
    return False


def _assert_error(response: Response, status: int, error_code: str, *, permanent: bool = True) -> None:
    assert response.status == status, response
    assert response.headers["connection"] == "close"
    body = response.json()
    assert body["errorCode"] == error_code
    assert body["source"] == ("User" if permanent else "System")
    assert body["isPermanent"] is permanent
    assert isinstance(body["message"], str)
    assert "uvicorn" not in body["message"]


MALFORMED = {
    "nul-in-request-line": b"GET /hea\x00lthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "conflicting-content-length": (
        b"POST " + JOB_PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
    ),
    "bad-chunk-size": (
        b"POST " + JOB_PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
    ),
    "space-in-header-name": b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n",
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=list(MALFORMED))
def test_malformed_http_is_a_fabric_error_response_and_the_connection_closes(quick: Serve, raw: bytes) -> None:
    with _connect(quick) as sock:
        sock.sendall(raw)
        response = _response(sock)
        _assert_error(response, 400, "InvalidRequest")
        assert response.json()["message"] == "The request is not valid HTTP/1.1."
        assert _closed(sock)


def test_headers_larger_than_the_limit_are_431(quick: Serve) -> None:
    with _connect(quick) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 5000 + b"\r\n\r\n")
        _assert_error(_response(sock), 431, "InvalidRequest")
        assert _closed(sock)


def test_a_connection_that_sends_nothing_is_closed(quick: Serve) -> None:
    with _connect(quick) as sock:
        assert _closed(sock)


def test_stalled_headers_are_408_and_the_connection_closes(quick: Serve) -> None:
    with _connect(quick) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        _assert_error(_response(sock), 408, "Timeout")
        assert _closed(sock)


def test_a_stalled_body_is_408_and_the_connection_closes(quick: Serve) -> None:
    with _connect(quick) as sock:
        sock.sendall(
            b"POST " + JOB_PATH.encode() + b" HTTP/1.1\r\n" + JOB_HEADERS + b'Content-Length: 100\r\n\r\n{"invokeType":'
        )
        _assert_error(_response(sock), 408, "Timeout")
        assert _closed(sock)


def test_an_idle_keep_alive_connection_is_closed(quick: Serve) -> None:
    with _connect(quick) as sock:
        for _ in range(2):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            response = _response(sock)
            assert response.status == 200
            assert response.headers.get("connection") != "close"
        assert _closed(sock)


def test_a_request_beyond_the_connection_limit_is_503_until_a_connection_closes(tmp_path: Path) -> None:
    serve = _start(tmp_path, "--http-max-connections", "2", "--http-keepalive-timeout", "300")
    try:
        held = [_connect(serve), _connect(serve)]
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _response(sock).status == 200
        with _connect(serve) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            _assert_error(_response(sock), 503, "ServiceUnavailable", permanent=False)
            assert _closed(sock)
        held.pop().close()
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            with _connect(serve) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                if _response(sock).status == 200:
                    break
            assert time.monotonic() < deadline, "a freed connection was never reused"
            time.sleep(0.02)
        for sock in held:
            sock.close()
    finally:
        kill_if_running(serve)
