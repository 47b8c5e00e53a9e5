"""AdminService.CancelJobInstances with the handlers on a `fabric-jobs worker` process (PostgreSQL, procrastinate):
a running job is told through procrastinate's abort, a queued one ends Cancelled and its handler never starts,
an ended one is untouched, another item's job runs on, and a second call asks 0."""

from __future__ import annotations

from pathlib import Path

from fabric_jobs.v1 import admin_service_pb2 as admin_pb
from fabric_jobs.v1 import admin_service_pb2_grpc as admin_grpc
from fabric_jobs.v1 import job_service_pb2 as pb
from tests import jobs
from tests.conftest import new_key, wait_for_status
from tests.harness import RunningServer
from tests.scaleout.conftest import WorkerFactory
from tests.scaleout.test_semantics import (
    CANCELLED,
    COMPLETED,
    IN_PROGRESS,
    NOT_STARTED,
    RUN_SECONDS,
    get,
    handler_never_ran,
)


async def create(service: RunningServer, job_type: str, **fields: str) -> pb.JobInstanceKey:
    key = new_key(jobs.ITEM_TYPE, job_type, **fields)
    await service.stub.CreateJobInstance(pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL))
    return key


async def test_cancel_all_of_an_item_on_a_worker(
    service: RunningServer, start_worker: WorkerFactory, run_log: Path, postgres_url: str
) -> None:
    await start_worker("--concurrency", "1")
    place = new_key(jobs.ITEM_TYPE, jobs.QUICK)
    item = {"tenant_id": place.tenant_id, "workspace_id": place.workspace_id, "item_id": place.item_id}
    done = await create(service, jobs.QUICK, **item)
    completed = await wait_for_status(service.stub, done, COMPLETED, within=RUN_SECONDS)
    running = await create(service, jobs.COOPERATES, **item)  # takes the worker's one slot
    await wait_for_status(service.stub, running, IN_PROGRESS, within=RUN_SECONDS)
    queued = await create(service, jobs.QUICK, **item)
    other_item = await create(service, jobs.QUICK, tenant_id=place.tenant_id, workspace_id=place.workspace_id)
    assert (await get(service.stub, queued)).status == NOT_STARTED

    admin = admin_grpc.AdminServiceStub(service.channel)
    request = admin_pb.CancelJobInstancesRequest(filter=admin_pb.JobInstanceFilter(item_id=place.item_id))
    answer = await admin.CancelJobInstances(request)

    assert (answer.asked, answer.ended) == (2, 2)
    stopped = await get(service.stub, running)
    assert stopped.status == CANCELLED
    assert stopped.HasField("start_time")
    never_started = await get(service.stub, queued)
    assert never_started.status == CANCELLED
    assert not never_started.HasField("start_time")
    assert await get(service.stub, done) == completed
    await wait_for_status(service.stub, other_item, COMPLETED, within=RUN_SECONDS)
    await handler_never_ran(postgres_url, run_log, queued)
    assert jobs.read_run_log(run_log)[running.job_instance_id] == 1

    again = await admin.CancelJobInstances(request)
    assert (again.asked, again.ended) == (0, 0)
