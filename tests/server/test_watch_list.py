"""WatchJobInstance streams a job's changes; ListJobInstances lists a tenant's jobs, filtered and paged."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

import grpc
import pytest

from fabric_jobs.v1 import job_service_pb2 as pb
from tests import jobs as job_types
from tests.conftest import new_key, rpc_error, status_details, wait_for_status
from tests.harness import RunningServer, ServerFactory
from tests.jobs import ITEM_TYPE, TestJobs
from tests.server.calls import CANCELLED, COMPLETED, FAILED, IN_PROGRESS


@pytest.fixture
async def running(jobs: TestJobs, start_server: ServerFactory) -> RunningServer:
    return await start_server(jobs.registry, cancel_wait=5.0)


async def read_rest(
    stream: grpc.aio.UnaryStreamCall[pb.WatchJobInstanceRequest, pb.WatchJobInstanceResponse],
) -> list[pb.JobInstance]:
    """Read a watch stream to its end (a bounded number of messages)."""
    replies: list[pb.JobInstance] = []
    for _ in range(100):
        reply = await stream.read()
        if reply is grpc.aio.EOF:  # type: ignore[attr-defined]
            return replies
        assert isinstance(reply, pb.WatchJobInstanceResponse)
        replies.append(reply.job_instance)
    raise AssertionError("the watch never ended")


async def create(running: RunningServer, key: pb.JobInstanceKey) -> None:
    await running.stub.CreateJobInstance(pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL))


async def test_watch_sends_the_current_state_then_each_change_and_ends_after_the_terminal_one(
    running: RunningServer, jobs: TestJobs
) -> None:
    key = new_key(ITEM_TYPE, job_types.GATED)
    await create(running, key)
    await wait_for_status(running.stub, key, IN_PROGRESS)
    stream = running.stub.WatchJobInstance(pb.WatchJobInstanceRequest(key=key))

    first = await stream.read()
    assert isinstance(first, pb.WatchJobInstanceResponse)
    assert first.job_instance.status == IN_PROGRESS
    jobs.gate.set()
    rest = await read_rest(stream)
    assert [job.status for job in rest] == [COMPLETED]
    assert rest[-1] == (await running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=key))).job_instance
    assert await stream.code() == grpc.StatusCode.OK


async def test_watch_on_another_server_sees_the_end_its_store_did_not_tell_it_of(
    start_server: ServerFactory, jobs: TestJobs
) -> None:
    """The job runs on one server; a Watch through a second server on the same database sees it end: by the
    database's notification on PostgreSQL, by polling the store on SQLite (no server tells the other there)."""
    running = await start_server(jobs.registry)
    key = new_key(ITEM_TYPE, job_types.GATED)
    await create(running, key)
    await wait_for_status(running.stub, key, IN_PROGRESS)
    other = await start_server(jobs.registry)
    stream = other.stub.WatchJobInstance(pb.WatchJobInstanceRequest(key=key))
    first = await stream.read()
    assert isinstance(first, pb.WatchJobInstanceResponse)
    assert first.job_instance.status == IN_PROGRESS

    jobs.gate.set()
    rest = await asyncio.wait_for(read_rest(stream), 10.0)
    assert [job.status for job in rest] == [COMPLETED]


async def test_watch_sees_the_cancel_request_then_the_cancelled_state(running: RunningServer) -> None:
    key = new_key(ITEM_TYPE, job_types.COOPERATES)
    await create(running, key)
    await wait_for_status(running.stub, key, IN_PROGRESS)
    stream = running.stub.WatchJobInstance(pb.WatchJobInstanceRequest(key=key))
    first = await stream.read()
    assert isinstance(first, pb.WatchJobInstanceResponse)
    assert first.job_instance.status == IN_PROGRESS

    await running.stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=key))
    rest = await read_rest(stream)
    assert rest[-1].status == CANCELLED
    assert all(job.status == IN_PROGRESS and job.cancel_requested for job in rest[:-1])


async def test_watch_of_a_finished_job_sends_one_message(running: RunningServer) -> None:
    key = new_key(ITEM_TYPE, job_types.COMPLETES)
    await create(running, key)
    done = await wait_for_status(running.stub, key, COMPLETED)
    replies = [reply.job_instance async for reply in running.stub.WatchJobInstance(pb.WatchJobInstanceRequest(key=key))]
    assert replies == [done]


async def test_watch_of_an_unknown_key_is_not_found(running: RunningServer) -> None:
    key = new_key(ITEM_TYPE, job_types.COMPLETES)
    stream = running.stub.WatchJobInstance(pb.WatchJobInstanceRequest(key=key))
    err = await rpc_error(stream.read())
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert status_details(err).reason == "JobInstanceNotFound"


async def test_watch_with_a_bad_key_is_invalid_argument(running: RunningServer) -> None:
    stream = running.stub.WatchJobInstance(pb.WatchJobInstanceRequest())
    err = await rpc_error(stream.read())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


async def list_all(running: RunningServer, request: pb.ListJobInstancesRequest) -> list[pb.JobInstance]:
    found: list[pb.JobInstance] = []
    for _ in range(100):
        reply = await running.stub.ListJobInstances(request)
        found.extend(reply.job_instances)
        if not reply.next_page_token:
            return found
        request.page_token = reply.next_page_token
    raise AssertionError("paging never ended")


def ids(found: list[pb.JobInstance]) -> list[str]:
    return [job.key.job_instance_id for job in found]


async def test_list_is_per_tenant_newest_first_and_filtered(running: RunningServer, jobs: TestJobs) -> None:
    tenant, other_tenant = str(uuid.uuid4()), str(uuid.uuid4())
    workspace, item = str(uuid.uuid4()), str(uuid.uuid4())
    created: list[pb.JobInstanceKey] = []
    for job_type, workspace_id, item_id in [
        (job_types.COMPLETES, workspace, item),
        (job_types.FAILS, workspace, item),
        (job_types.GATED, workspace, str(uuid.uuid4())),
        (job_types.COMPLETES, str(uuid.uuid4()), item),
    ]:
        key = new_key(ITEM_TYPE, job_type, tenant_id=tenant, workspace_id=workspace_id, item_id=item_id)
        await create(running, key)
        created.append(key)
    await create(running, new_key(ITEM_TYPE, job_types.COMPLETES, tenant_id=other_tenant, workspace_id=workspace))
    await wait_for_status(running.stub, created[0], COMPLETED)
    await wait_for_status(running.stub, created[1], FAILED)
    await wait_for_status(running.stub, created[2], IN_PROGRESS)
    await wait_for_status(running.stub, created[3], COMPLETED)
    newest_first = [key.job_instance_id for key in reversed(created)]

    everything = await list_all(running, pb.ListJobInstancesRequest(tenant_id=tenant))
    assert ids(everything) == newest_first
    create_times = [job.create_time.ToMilliseconds() for job in everything]
    assert create_times == sorted(create_times, reverse=True)
    assert ids(await list_all(running, pb.ListJobInstancesRequest(tenant_id=tenant.upper()))) == newest_first
    assert ids(await list_all(running, pb.ListJobInstancesRequest(tenant_id=str(uuid.uuid4())))) == []

    def expect(*indexes: int) -> list[str]:
        return [created[i].job_instance_id for i in sorted(indexes, reverse=True)]

    by_workspace = pb.ListJobInstancesRequest(tenant_id=tenant, workspace_id=workspace)
    assert ids(await list_all(running, by_workspace)) == expect(0, 1, 2)
    by_item = pb.ListJobInstancesRequest(tenant_id=tenant, item_id=item)
    assert ids(await list_all(running, by_item)) == expect(0, 1, 3)
    by_job_type = pb.ListJobInstancesRequest(tenant_id=tenant, item_type=ITEM_TYPE, job_type=job_types.COMPLETES)
    assert ids(await list_all(running, by_job_type)) == expect(0, 3)
    by_other_item_type = pb.ListJobInstancesRequest(tenant_id=tenant, item_type="Other.Item")
    assert ids(await list_all(running, by_other_item_type)) == []
    by_status = pb.ListJobInstancesRequest(tenant_id=tenant, statuses=[FAILED, IN_PROGRESS])
    assert ids(await list_all(running, by_status)) == expect(1, 2)
    combined = pb.ListJobInstancesRequest(tenant_id=tenant, workspace_id=workspace, statuses=[COMPLETED])
    assert ids(await list_all(running, combined)) == expect(0)
    jobs.gate.set()


async def test_list_pages_through_every_job_once(running: RunningServer) -> None:
    tenant = str(uuid.uuid4())
    keys = [new_key(ITEM_TYPE, job_types.COMPLETES, tenant_id=tenant) for _ in range(23)]
    for key in keys:
        await create(running, key)

    pages: list[int] = []
    found: list[pb.JobInstance] = []
    request = pb.ListJobInstancesRequest(tenant_id=tenant, page_size=5)
    for _ in range(100):
        reply = await running.stub.ListJobInstances(request)
        pages.append(len(reply.job_instances))
        found.extend(reply.job_instances)
        if not reply.next_page_token:
            break
        request.page_token = reply.next_page_token
    assert pages == [5, 5, 5, 5, 3]
    assert sorted(ids(found)) == sorted(key.job_instance_id for key in keys)
    assert len(set(ids(found))) == len(keys)
    create_times = [job.create_time.ToMilliseconds() for job in found]
    assert create_times == sorted(create_times, reverse=True)


def _token(sort_key: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(sort_key).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "not a token",
        "!!!",
        _token({"a": 1}),
        _token([1, "a"]),
        _token(["1", "", "", "", "", ""]),
        _token([2**70, "", "", "", "", ""]),
        "\u00e9t\u00e9",
        base64.urlsafe_b64encode(b"[" * 2000).decode(),
    ],
)
async def test_list_with_a_bad_page_token_is_invalid_argument(running: RunningServer, token: str) -> None:
    request = pb.ListJobInstancesRequest(tenant_id=str(uuid.uuid4()), page_token=token)
    err = await rpc_error(running.stub.ListJobInstances(request))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(status_details(err).field_violations) == {"page_token"}


@pytest.mark.parametrize(
    ("request_", "fields"),
    [
        (pb.ListJobInstancesRequest(tenant_id=str(uuid.uuid4()), page_size=1001), {"page_size"}),
        (pb.ListJobInstancesRequest(tenant_id=str(uuid.uuid4()), page_size=-1), {"page_size"}),
        (pb.ListJobInstancesRequest(), {"tenant_id"}),
        (
            pb.ListJobInstancesRequest(tenant_id="x", workspace_id="y", item_id="z"),
            {"tenant_id", "workspace_id", "item_id"},
        ),
        (pb.ListJobInstancesRequest(tenant_id=str(uuid.uuid4()), statuses=[0]), {"statuses"}),  # type: ignore[list-item]
        (pb.ListJobInstancesRequest(tenant_id=str(uuid.uuid4()), job_type="a b"), {"job_type"}),
    ],
)
async def test_bad_list_request_is_invalid_argument(
    running: RunningServer, request_: pb.ListJobInstancesRequest, fields: set[str]
) -> None:
    err = await rpc_error(running.stub.ListJobInstances(request_))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(status_details(err).field_violations) == fields


@pytest.mark.parametrize("page_size", [1, 1000, 0])
async def test_page_size_limits_are_accepted(running: RunningServer, page_size: int) -> None:
    reply = await running.stub.ListJobInstances(
        pb.ListJobInstancesRequest(tenant_id=str(uuid.uuid4()), page_size=page_size)
    )
    assert list(reply.job_instances) == []
    assert reply.next_page_token == ""
