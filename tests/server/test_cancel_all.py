"""AdminService.CancelJobInstances on the embedded engine (SQLite, handlers in this process): every job of an item
not ended is cancelled as a single Cancel would be, ended ones are untouched, the call says how many it asked and
how many ended, a second call asks 0, and a filter that names neither a workspace nor an item is refused.
The same on procrastinate workers: tests/scaleout/test_semantics.py."""

from __future__ import annotations

import grpc
import pytest

from fabric_jobs.v1 import admin_service_pb2 as admin_pb
from fabric_jobs.v1 import admin_service_pb2_grpc as admin_grpc
from fabric_jobs.v1 import job_service_pb2 as pb
from tests import jobs
from tests.conftest import new_key, rpc_error, status_details, wait_for_status
from tests.harness import RunningServer, ServerFactory
from tests.server.calls import CANCELLED, COMPLETED, IN_PROGRESS, NOT_STARTED


@pytest.fixture
async def running(start_server: ServerFactory) -> RunningServer:
    """One handler thread: a plain job holding it keeps the next plain job NotStarted."""
    return await start_server(jobs.registry, max_threads=1)


async def create(running: RunningServer, job_type: str, **fields: str) -> pb.JobInstanceKey:
    key = new_key(jobs.ITEM_TYPE, job_type, **fields)
    await running.stub.CreateJobInstance(pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL))
    return key


async def get(running: RunningServer, key: pb.JobInstanceKey) -> pb.JobInstance:
    return (await running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=key))).job_instance


def of_item(key: pb.JobInstanceKey) -> admin_pb.CancelJobInstancesRequest:
    return admin_pb.CancelJobInstancesRequest(filter=admin_pb.JobInstanceFilter(item_id=key.item_id))


async def test_cancel_all_of_an_item_cancels_its_jobs_not_ended_and_nothing_else(running: RunningServer) -> None:
    admin = admin_grpc.AdminServiceStub(running.channel)
    place = new_key(jobs.ITEM_TYPE, jobs.COMPLETES)
    tenant = place.tenant_id
    item = {"tenant_id": tenant, "workspace_id": place.workspace_id, "item_id": place.item_id}
    done = await create(running, jobs.COMPLETES, **item)
    await wait_for_status(running.stub, done, COMPLETED)
    stubborn = await create(running, jobs.IGNORES_CANCEL_THREAD, **item)  # holds the one thread past the wait
    await wait_for_status(running.stub, stubborn, IN_PROGRESS)
    queued = await create(running, jobs.SYNC_COMPLETES, **item)
    cooperative = await create(running, jobs.COOPERATES, **item)
    await wait_for_status(running.stub, cooperative, IN_PROGRESS)
    assert (await get(running, queued)).status == NOT_STARTED
    other_item = await create(running, jobs.COOPERATES, tenant_id=tenant, workspace_id=item["workspace_id"])
    await wait_for_status(running.stub, other_item, IN_PROGRESS)
    completed_before = await get(running, done)

    answer = await admin.CancelJobInstances(of_item(stubborn))

    assert (answer.asked, answer.ended) == (3, 2)
    cancelled_at_once = await get(running, queued)
    assert cancelled_at_once.status == CANCELLED
    assert not cancelled_at_once.HasField("start_time"), "a NotStarted job never starts"
    assert (await get(running, cooperative)).status == CANCELLED
    still_stopping = await get(running, stubborn)
    assert still_stopping.status == IN_PROGRESS
    assert still_stopping.cancel_requested
    assert await get(running, done) == completed_before
    assert (await get(running, other_item)).status == IN_PROGRESS

    again = await admin.CancelJobInstances(of_item(stubborn))
    assert (again.asked, again.ended) == (0, 0)
    forced = await wait_for_status(running.stub, stubborn, CANCELLED, within=running.settings.cancel_grace + 5)
    assert forced.cancel_requested
    assert (await get(running, queued)) == cancelled_at_once
    assert jobs.runs[queued.job_instance_id] == 0
    assert (await admin.CancelJobInstances(of_item(stubborn))).asked == 0
    assert (await get(running, other_item)).status == IN_PROGRESS


async def test_cancel_all_of_a_workspace_covers_its_items_and_may_narrow_by_status(running: RunningServer) -> None:
    admin = admin_grpc.AdminServiceStub(running.channel)
    first = await create(running, jobs.COOPERATES)
    place = {"tenant_id": first.tenant_id, "workspace_id": first.workspace_id}
    second = await create(running, jobs.COOPERATES, **place)
    for key in (first, second):
        await wait_for_status(running.stub, key, IN_PROGRESS)
    only_queued = admin_pb.CancelJobInstancesRequest(
        filter=admin_pb.JobInstanceFilter(workspace_id=first.workspace_id, statuses=[NOT_STARTED])
    )
    assert (await admin.CancelJobInstances(only_queued)).asked == 0
    whole = admin_pb.CancelJobInstancesRequest(filter=admin_pb.JobInstanceFilter(workspace_id=first.workspace_id))
    answer = await admin.CancelJobInstances(whole)
    assert (answer.asked, answer.ended) == (2, 2)
    assert {(await get(running, key)).status for key in (first, second)} == {CANCELLED}


@pytest.mark.parametrize(
    ("job_filter", "field"),
    [
        (admin_pb.JobInstanceFilter(), "filter"),
        (admin_pb.JobInstanceFilter(tenant_id="7c1d1a1e-0000-4000-8000-00000000c11e", job_type="x"), "filter"),
        (admin_pb.JobInstanceFilter(item_id="nope"), "filter.item_id"),
        (
            admin_pb.JobInstanceFilter(item_id="7c1d1a1e-0000-4000-8000-00000000c11e", statuses=[COMPLETED]),
            "filter.statuses",
        ),
    ],
    ids=["empty", "neither-workspace-nor-item", "bad-uuid", "ended-status"],
)
async def test_a_cancel_of_everything_or_a_bad_filter_is_invalid_argument(
    running: RunningServer, job_filter: admin_pb.JobInstanceFilter, field: str
) -> None:
    admin = admin_grpc.AdminServiceStub(running.channel)
    bystander = await create(running, jobs.COOPERATES)
    await wait_for_status(running.stub, bystander, IN_PROGRESS)
    error = await rpc_error(admin.CancelJobInstances(admin_pb.CancelJobInstancesRequest(filter=job_filter)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in status_details(error).field_violations
    assert (await get(running, bystander)).status == IN_PROGRESS
