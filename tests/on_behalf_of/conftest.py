"""Fixtures of the acting-for-the-user tests: test certificates, the Entra stand-in, the workload's Entra app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fabric_jobs.server.on_behalf_of.entra import EntraApp, EntraSession, EntraSettings
from tests.entra import EntraStandIn, RunningEntra
from tests.tls import Certificates, make_certificates

CLIENT_ID = "9a1c5e3b-7d2f-4b8e-a6c4-3f0e9d8b7a12"
CLIENT_SECRET = "stand-in-client-secret-3f9a7c1e5b2d"
STORAGE = "https://storage.azure.com/.default"
FABRIC = "https://api.fabric.microsoft.com/.default"


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    directory = tmp_path / "tls"
    directory.mkdir()
    return make_certificates(directory)


@pytest.fixture
def entra(certificates: Certificates) -> Iterator[EntraStandIn]:
    """The Entra stand-in, knowing the workload's app by its client secret."""
    stand_in = EntraStandIn(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    running = RunningEntra(stand_in, certificates)
    try:
        yield stand_in
    finally:
        running.close()


@pytest.fixture
def bundles_elsewhere(monkeypatch: pytest.MonkeyPatch, certificates: Certificates) -> None:
    """REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE name a CA that did not sign the stand-in's certificate."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificates.other_ca))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(certificates.other_ca))


def entra_app(stand_in: EntraStandIn, certificates: Certificates, **overrides: object) -> EntraApp:
    fields: dict[str, object] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "authority": stand_in.url,
        "ca_file": certificates.ca,
        "retry_deadline_seconds": 5.0,
        **overrides,
    }
    settings = EntraSettings(**fields)  # type: ignore[arg-type]
    return EntraApp(settings, session=EntraSession(settings))
