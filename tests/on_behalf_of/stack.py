"""A deployment with authentication on and the Entra stand-in: its files and options, Fabric's calls to it."""

from __future__ import annotations

import base64
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests import tokens
from tests.conftest import POLL_INTERVAL
from tests.entra import EntraStandIn
from tests.on_behalf_of.acting_jobs import ITEM_TYPE
from tests.processes import clean_env
from tests.tls import Certificates

CLIENT_ID = "9a1c5e3b-7d2f-4b8e-a6c4-3f0e9d8b7a12"
"""The workload's Entra app."""
CLIENT_SECRET = "stand-in-client-secret-3f9a7c1e5b2d"
WORKSPACE = "0c9a7e4b-1d2f-4a3b-8c5d-6e7f8a9b0c1d"
ITEM = "5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c"
JOBS = "tests.on_behalf_of.acting_jobs:registry"
TERMINAL = ("Completed", "Failed", "Cancelled")
WAIT_SECONDS = 30.0


def new_key_file(path: Path) -> Path:
    path.write_text(base64.b64encode(os.urandom(32)).decode())
    return path


@dataclass
class Deployment:
    """Where the files of one test deployment are, and the options every process takes."""

    directory: Path
    entra: EntraStandIn
    certificates: Certificates
    key_file: Path = field(init=False)
    subject_tokens: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key_file = new_key_file(self.directory / "token.key")
        (self.directory / "client-secret").write_text(CLIENT_SECRET + "\n")
        tokens.write_jwks(self.directory / "jwks.json")

    def auth_options(self) -> list[str]:
        return [
            f"--auth-audience={','.join(tokens.TEST_AUDIENCES)}",
            f"--auth-publisher-tenant-id={tokens.PUBLISHER_TENANT_ID}",
            f"--auth-jwks-file={self.directory / 'jwks.json'}",
        ]

    def entra_options(self, *, key_file: Path | None = None, old_key_file: Path | None = None) -> list[str]:
        options = [
            f"--entra-client-id={CLIENT_ID}",
            f"--entra-client-secret-file={self.directory / 'client-secret'}",
            f"--entra-authority={self.entra.url}",
            f"--entra-ca-file={self.certificates.ca}",
            f"--token-key-file={key_file or self.key_file}",
        ]
        return options + ([f"--token-old-key-file={old_key_file}"] if old_key_file else [])

    def env(self) -> dict[str, str]:
        """DEBUG-level JSON logs are asked by option; here the traces go to the console, and the environment's CA
        bundles name a CA that did not sign the stand-in's certificate (--entra-ca-file must win)."""
        other_ca = str(self.certificates.other_ca)
        return clean_env(OTEL_TRACES_EXPORTER="console", REQUESTS_CA_BUNDLE=other_ca, CURL_CA_BUNDLE=other_ca)

    def create(self, rest_url: str, job_type: str, **payload: Any) -> str:
        """Fabric's Create of a new job instance of `job_type` for the test user; its job instance id."""
        job_instance_id = str(uuid.uuid4())
        subject_token = tokens.mint_subject_token(uti=uuid.uuid4().hex)  # Entra's tokens differ by their uti
        self.subject_tokens.append(subject_token)
        reply = httpx.post(
            job_url(rest_url, job_type, job_instance_id),
            headers={
                **headers(),
                "Authorization": tokens.authorization_header(subject_token, tokens.mint_app_token()),
            },
            json={"invokeType": "Manual", "creationPayload": payload},
            timeout=WAIT_SECONDS,
        )
        assert reply.status_code == 202, reply.text
        return job_instance_id

    def state(self, rest_url: str, job_type: str, job_instance_id: str) -> dict[str, Any]:
        reply = httpx.get(
            job_url(rest_url, job_type, job_instance_id),
            headers={
                **headers(),
                "Authorization": tokens.authorization_header(tokens.mint_subject_token(), tokens.mint_app_token()),
            },
            timeout=WAIT_SECONDS,
        )
        assert reply.status_code == 200, reply.text
        state: dict[str, Any] = reply.json()
        return state

    def wait_for(
        self, rest_url: str, job_type: str, job_instance_id: str, statuses: tuple[str, ...] = TERMINAL
    ) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            state = self.state(rest_url, job_type, job_instance_id)
            if state["status"] in statuses:
                return state
            assert time.monotonic() < deadline, f"job {job_instance_id} still {state['status']}"
            time.sleep(POLL_INTERVAL)

    def secrets(self) -> dict[str, str]:
        """Every secret's text by what it is: the client secret, each subject token, each token Entra issued."""
        found = {"client secret": CLIENT_SECRET}
        for number, token in enumerate(self.subject_tokens):
            found[f"subject token {number}"] = token
            found[f"subject token {number}'s signature"] = token.rsplit(".", 1)[1]
        for number, token in enumerate(self.entra.issued_access_tokens):
            found[f"access token {number}"] = token
        for number, token in enumerate(self.entra.issued_refresh_tokens):
            found[f"refresh token {number}"] = token
        return found


def headers() -> dict[str, str]:
    return {"x-ms-client-tenant-id": tokens.CLIENT_TENANT_ID, "ActivityId": str(uuid.uuid4()), "RequestId": "r"}


def job_url(rest_url: str, job_type: str, job_instance_id: str) -> str:
    return f"{rest_url}/workspaces/{WORKSPACE}/items/{ITEM_TYPE}/{ITEM}/jobTypes/{job_type}/instances/{job_instance_id}"


def leaks(secrets: dict[str, str], texts: dict[str, str | bytes]) -> list[str]:
    """Which secret appears where, as 'what in where'."""
    found = []
    for where, text in texts.items():
        data = text if isinstance(text, bytes) else text.encode()
        found += [f"{what} in {where}" for what, secret in secrets.items() if secret.encode() in data]
    return found
