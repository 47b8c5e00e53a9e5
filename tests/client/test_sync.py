"""SyncJobsClient, blocking, from plain test functions: every call against a real JobService on SQLite and on
PostgreSQL (the service's own procrastinate worker running the handlers), over a real gRPC channel and over the
in-process channel (the pytest plugin's `fabric_jobs_client`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fabric_jobs.client import (
    CancelledAll,
    InvalidRequest,
    JobFilter,
    JobInstanceConflict,
    JobInstanceNotFound,
    JobStatus,
    SyncAdminClient,
    SyncJobsClient,
    TransportError,
)
from fabric_jobs.testing import FabricJobsService
from tests import jobs
from tests.client.conftest import TEST_SETTINGS, new_key

WAIT = 20.0


@pytest.fixture(params=["sqlite", "postgresql"])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FabricJobsService]:
    if request.param == "sqlite":
        database = "sqlite:///" + str(tmp_path / "jobs.db")
    else:
        database = request.getfixturevalue("postgres_url")
    running = FabricJobsService(jobs.registry, database, listen=True, **TEST_SETTINGS)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(params=["grpc", "in-process"])
def client(request: pytest.FixtureRequest, service: FabricJobsService) -> Iterator[SyncJobsClient]:
    if request.param == "in-process":
        yield service.client
        return
    with SyncJobsClient.connect(service.grpc_address) as connected:
        yield connected


def test_every_call(client: SyncJobsClient) -> None:
    key = new_key(jobs.QUICK)
    assert client.create(key, {"delaySeconds": 0}).created
    assert not client.create(key, {"delaySeconds": 0}).created
    final = client.wait(key, timeout=WAIT)
    assert final.status is JobStatus.COMPLETED
    assert client.get(key) == final
    assert list(client.watch(key)) == [final]
    assert client.list(key.tenant_id).jobs == (final,)
    assert client.cancel(key) == final

    cooperative = new_key(jobs.COOPERATES)
    client.create(cooperative)
    for change in client.watch(cooperative, timeout=WAIT):
        if change.status is JobStatus.IN_PROGRESS:
            break
    client.cancel(cooperative)
    assert client.wait(cooperative, timeout=WAIT).status is JobStatus.CANCELLED


def test_errors_are_the_async_clients(client: SyncJobsClient) -> None:
    key = new_key(jobs.QUICK)
    with pytest.raises(JobInstanceNotFound):
        client.get(key)
    with pytest.raises(JobInstanceNotFound):
        list(client.watch(key))
    client.create(key, {"delaySeconds": 0})
    with pytest.raises(JobInstanceConflict):
        client.create(key, {"delaySeconds": 1})
    with pytest.raises(InvalidRequest) as raised:
        client.list("not-a-tenant")
    assert [violation.field for violation in raised.value.field_violations] == ["tenant_id"]
    client.wait(key, timeout=WAIT)


def test_a_client_of_no_service_raises_a_transport_error(unused_tcp_port: int) -> None:
    with SyncJobsClient.connect(f"127.0.0.1:{unused_tcp_port}", timeout=2) as client, pytest.raises(TransportError):
        client.get(new_key())


def test_sync_admin_client_cancels_every_job_of_an_item(service: FabricJobsService) -> None:
    key = new_key(jobs.COOPERATES)
    service.client.create(key)
    with SyncAdminClient.connect(service.grpc_address) as admin:
        item = JobFilter(tenant_id=key.tenant_id, item_id=key.item_id)
        assert admin.count(item).total == 1
        assert admin.cancel_all(item).asked == 1
        assert service.client.wait(key, timeout=WAIT).status is JobStatus.CANCELLED
        assert admin.cancel_all(item) == CancelledAll(asked=0, ended=0)
        assert [job.key for job in admin.search(item).jobs] == [key]
