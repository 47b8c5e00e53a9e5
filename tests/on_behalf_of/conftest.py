"""Fixtures of the acting-for-the-user tests: test certificates, the Entra stand-in, the workload's Entra app."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from fabric_jobs.on_behalf_of.entra import EntraApp, EntraSession, EntraSettings
from tests.entra import EntraStandIn, RunningEntra
from tests.on_behalf_of.acting_jobs import FABRIC, STORAGE
from tests.on_behalf_of.stack import CLIENT_ID, CLIENT_SECRET, Deployment
from tests.processes import Processes
from tests.tls import Certificates, make_certificates

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "FABRIC", "STORAGE", "entra_app", "rsa_certificate"]


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
def deployment(tmp_path: Path, entra: EntraStandIn, certificates: Certificates) -> Deployment:
    """The files and options of a deployment that acts for users, with the Entra stand-in."""
    return Deployment(tmp_path, entra, certificates)


@pytest.fixture
def processes() -> Iterator[Processes]:
    with Processes() as running:
        yield running


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


def rsa_certificate(directory: Path, *, with_key: bool = True) -> Path:
    """A self-signed RSA certificate for the workload's app, with its private key unless told otherwise."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "workload app")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path = directory / ("app.pem" if with_key else "app-no-key.pem")
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    if with_key:
        pem += key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    path.write_bytes(pem)
    return path
