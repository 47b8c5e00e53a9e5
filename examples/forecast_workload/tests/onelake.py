"""A local stand-in of OneLake's DFS endpoint over HTTPS: ADLS Gen2's List Paths, for the bearer token it expects.

`folders` maps (workspace id, directory) to the paths it lists; a request without `Authorization: Bearer
<token>` is answered 401 as OneLake would. `requests` records each request's path, query and token.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LAST_MODIFIED = "Thu, 03 Dec 2026 17:00:00 GMT"


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA (the file clients trust), and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "onelake stand-in")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "onelake.pem", directory / "onelake.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class OneLake:
    token: str
    folders: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    ca_file: str = ""

    def answer(self, path: str, query: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        self.requests.append({"path": path, "query": query, "authorization": authorization})
        if authorization != f"Bearer {self.token}":
            return 401, {"error": {"code": "InvalidAuthenticationInfo", "message": "Authentication failed."}}
        workspace = path.strip("/")
        if query.get("resource") != "filesystem":
            return 400, {"error": {"code": "InvalidQueryParameterValue", "message": "resource"}}
        listed = self.folders.get((workspace, query.get("directory", "")))
        if listed is None:
            return 404, {"error": {"code": "PathNotFound", "message": "The specified path does not exist."}}
        return 200, {"paths": listed}


def _handler(lake: OneLake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_GET(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            status, body = lake.answer(
                parsed.path, dict(urllib.parse.parse_qsl(parsed.query)), self.headers.get("Authorization")
            )
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-ms-version", "2025-05-05")
            self.end_headers()
            self.wfile.write(payload)

    return Handler


class RunningOneLake:
    def __init__(self, lake: OneLake, directory: Path) -> None:
        cert, key = self_signed_certificate(directory)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(lake))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        lake.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        lake.ca_file = str(cert)
        self._thread = threading.Thread(target=self._server.serve_forever, name="onelake stand-in", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def path(name: str, *, directory: bool = False, size: int = 0) -> dict[str, Any]:
    """One entry of List Paths' answer."""
    entry: dict[str, Any] = {"name": name, "lastModified": LAST_MODIFIED, "etag": "0x8DC0"}
    if directory:
        entry["isDirectory"] = "true"
    else:
        entry["contentLength"] = str(size)
    return entry
