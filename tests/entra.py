"""A local stand-in for Microsoft Entra's token service, over HTTPS with the test CA, for MSAL to talk to.

It serves a tenant's OpenID metadata and its v2.0 token endpoint. The token endpoint checks what Entra
checks of a confidential client's on-behalf-of request (grant type, requested_token_use, the assertion, the
client's secret or certificate assertion, the scopes) and of a refresh (a refresh token it issued), answers
as Entra does (access token, rotated refresh token, id token and client_info for MSAL's account), and records
each request. `fail_next` queues Entra's error answers; `expire_assertions` makes it refuse the assertions it
has seen as expired, as Entra does an hour after they were issued.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
import urllib.parse
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography import x509

from tests.tls import Certificates

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ACCESS_TOKEN_SECONDS = 3600
RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()


def entra_error(status: int, error: str, code: int, description: str, **headers: str) -> Answer:
    """An error answer shaped like Entra's (error, AADSTS description, error_codes, correlation_id)."""
    body = {
        "error": error,
        "error_description": f"AADSTS{code}: {description} Trace ID: {uuid.uuid4()} Correlation ID: x",
        "error_codes": [code],
        "correlation_id": str(uuid.uuid4()),
        "trace_id": str(uuid.uuid4()),
    }
    return Answer(status, body, tuple(headers.items()))


@dataclass
class EntraStandIn:
    """State of the stand-in; `url` is its authority (https://127.0.0.1:port)."""

    client_id: str
    client_secret: str | None = None
    client_certificate_pem: bytes | None = None
    url: str = ""
    requests: list[dict[str, str]] = field(default_factory=list)
    issued_access_tokens: list[str] = field(default_factory=list)
    issued_refresh_tokens: list[str] = field(default_factory=list)
    expired_assertions: set[str] = field(default_factory=set)
    failures: deque[Answer] = field(default_factory=deque)
    refresh_token_users: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The claims of the user each refresh token was issued for."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, *answers: Answer) -> None:
        with self.lock:
            self.failures.extend(answers)

    def expire_assertions(self) -> None:
        """From now on, refuse every assertion seen so far as expired (AADSTS500133)."""
        with self.lock:
            self.expired_assertions.update(
                request["assertion"] for request in self.requests if request.get("assertion")
            )

    def token_requests(self, grant_type: str | None = None) -> list[dict[str, str]]:
        with self.lock:
            return [r for r in self.requests if grant_type is None or r.get("grant_type") == grant_type]

    # The token endpoint's checks and answers.

    def answer(self, tenant: str, form: dict[str, str], endpoint: str) -> Answer:
        with self.lock:
            self.requests.append({**form, "tenant": tenant})
            if self.failures:
                return self.failures.popleft()
            problem = self._client_problem(form, endpoint)
            if problem is not None:
                return entra_error(401, "invalid_client", 7000215, problem)
            grant = form.get("grant_type")
            if grant == JWT_BEARER:
                return self._on_behalf_of(tenant, form)
            if grant == "refresh_token":
                user = self.refresh_token_users.get(form.get("refresh_token", ""))
                if user is None:
                    return entra_error(400, "invalid_grant", 9002313, "Invalid refresh token.")
                return self._tokens(tenant, form, user)
            return entra_error(400, "unsupported_grant_type", 70003, "The grant type is not supported.")

    def _client_problem(self, form: dict[str, str], endpoint: str) -> str | None:
        if form.get("client_id") != self.client_id:
            return "Application not found in the directory."
        if self.client_secret is not None:
            return None if form.get("client_secret") == self.client_secret else "Invalid client secret provided."
        assert self.client_certificate_pem is not None
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE or "client_assertion" not in form:
            return "No client assertion."
        public_key = x509.load_pem_x509_certificate(self.client_certificate_pem).public_key()
        try:
            claims = jwt.decode(
                form.get("client_assertion", ""),
                public_key,  # type: ignore[arg-type]
                algorithms=["RS256", "PS256"],
                audience=endpoint,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            return f"Invalid client assertion: {exc}."
        return None if claims["iss"] == claims["sub"] == self.client_id else "Client assertion names another app."

    def _on_behalf_of(self, tenant: str, form: dict[str, str]) -> Answer:
        assertion = form.get("assertion", "")
        if form.get("requested_token_use") != "on_behalf_of":
            return entra_error(400, "invalid_request", 50027, "requested_token_use must be on_behalf_of.")
        if assertion in self.expired_assertions:
            return entra_error(400, "invalid_grant", 500133, "Assertion is not within its valid time range.")
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return entra_error(400, "invalid_grant", 50000, "The assertion is not a JWT.")
        if not form.get("scope"):
            return entra_error(400, "invalid_scope", 70011, "No scope.")
        return self._tokens(tenant, form, claims)

    def _tokens(self, tenant: str, form: dict[str, str], user: dict[str, Any]) -> Answer:
        access_token = f"at-{uuid.uuid4().hex}"
        refresh_token = f"rt-{uuid.uuid4().hex}"
        self.issued_access_tokens.append(access_token)
        self.issued_refresh_tokens.append(refresh_token)
        self.refresh_token_users[refresh_token] = user
        now = int(time.time())
        id_token = jwt.encode(
            {
                "aud": self.client_id,
                "iss": f"{self.url}/{tenant}/v2.0",
                "iat": now,
                "nbf": now,
                "exp": now + ACCESS_TOKEN_SECONDS,
                "oid": user.get("oid"),
                "sub": user.get("sub"),
                "tid": tenant,
                "preferred_username": user.get("upn"),
            },
            "the Entra stand-in's id token key, 32 bytes or more",
            algorithm="HS256",
        )
        client_info = {"uid": user.get("oid"), "utid": tenant}
        body = {
            "token_type": "Bearer",
            "scope": " ".join(
                s for s in form.get("scope", "").split() if s not in ("openid", "profile", "offline_access")
            ),
            "expires_in": ACCESS_TOKEN_SECONDS,
            "ext_expires_in": ACCESS_TOKEN_SECONDS,
            "access_token": access_token,
            "refresh_token": refresh_token,
            "id_token": id_token,
            "client_info": base64.urlsafe_b64encode(json.dumps(client_info).encode()).decode().rstrip("="),
        }
        return Answer(200, body)


def _handler(stand_in: EntraStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _send(self, answer: Answer) -> None:
            payload = json.dumps(answer.body).encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in answer.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            parts = self.path.split("?")[0].strip("/").split("/")
            if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                tenant = parts[0]
                base = f"{stand_in.url}/{tenant}"
                self._send(
                    Answer(
                        200,
                        {
                            "issuer": f"{base}/v2.0",
                            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                            "token_endpoint": f"{base}/oauth2/v2.0/token",
                            "jwks_uri": f"{base}/discovery/v2.0/keys",
                        },
                    )
                )
                return
            self._send(Answer(404, {"error": "not_found"}))

        def do_POST(self) -> None:
            parts = self.path.split("?")[0].strip("/").split("/")
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
                endpoint = f"{stand_in.url}{self.path.split('?')[0]}"
                self._send(stand_in.answer(parts[0], form, endpoint))
                return
            self._send(Answer(404, {"error": "not_found"}))

    return Handler


class RunningEntra:
    def __init__(self, stand_in: EntraStandIn, certificates: Certificates) -> None:
        self.stand_in = stand_in
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stand_in))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificates.server.cert, certificates.server.key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        stand_in.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="entra stand-in", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
