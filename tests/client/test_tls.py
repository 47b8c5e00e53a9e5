"""The client over TLS and mutual TLS, with certificates made for the test; and the example of docs/client.md,
run as written against a JobService that requires client certificates."""

from __future__ import annotations

import re
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from fabric_jobs.client import JobInstanceNotFound, JobsClient, JobStatus, Tls, TransportError
from fabric_jobs.server.app import JobServer
from tests.client.conftest import new_key
from tests.test_grpc_tls import _server_tls, _start
from tests.tls import Certificates, make_certificates

DOCS = Path(__file__).resolve().parents[2] / "docs" / "client.md"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
async def mtls_server(tmp_path: Path, certs: Certificates) -> AsyncIterator[JobServer]:
    server = await _start(tmp_path, _server_tls(certs, mutual=True))
    yield server
    await server.stop(grace=1.0)


async def test_the_documented_example_runs_over_mutual_tls(mtls_server: JobServer, certs: Certificates) -> None:
    example = re.search(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    assert example is not None
    code = example[1]
    for text, value in {
        "dns:///fabric-jobs-grpc:50051": mtls_server.address,
        "ca.pem": str(certs.ca),
        "client.pem": str(certs.client.cert),
        "client.key": str(certs.client.key),
        "0b4b2c4e-…": str(uuid.uuid4()),
    }.items():
        assert text in code
        code = code.replace(text, value)
    while '"…"' in code:
        code = code.replace('"…"', f'"{uuid.uuid4()}"', 1)
    namespace: dict[str, object] = {}
    exec(f"async def example():\n{textwrap.indent(code, '    ')}\n    return final", namespace)
    final = await namespace["example"]()  # type: ignore[operator]
    assert final.status is JobStatus.CANCELLED


async def test_a_client_without_the_certificate_the_service_asks_for_is_refused(
    mtls_server: JobServer, certs: Certificates
) -> None:
    without_certificate = Tls.from_files(ca=certs.ca)
    async with JobsClient.connect(mtls_server.address, tls=without_certificate, timeout=5) as jobs:
        with pytest.raises(TransportError) as raised:
            await jobs.get(new_key())
    assert raised.value.status is grpc.StatusCode.UNAVAILABLE
    cert, key = certs.client.read()
    with_pem = Tls.from_pem(ca=certs.ca.read_bytes(), cert=cert, key=key, server_name="localhost")
    async with JobsClient.connect(mtls_server.address, tls=with_pem) as jobs:
        with pytest.raises(JobInstanceNotFound):
            await jobs.get(new_key())


def test_a_certificate_goes_with_its_key(certs: Certificates) -> None:
    with pytest.raises(ValueError, match="give both cert and key"):
        Tls.from_files(ca=certs.ca, cert=certs.client.cert)
