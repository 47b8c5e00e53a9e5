"""Keys the JobService refuses: a UUID or a name with a trailing newline is INVALID_ARGUMENT naming the field."""

from __future__ import annotations

import uuid

import grpc
import pytest

from fabric_jobs.v1 import job_service_pb2 as pb
from tests import jobs as job_types
from tests.conftest import new_key, rpc_error, status_details
from tests.harness import RunningServer, ServerFactory
from tests.jobs import ITEM_TYPE, TestJobs

KEY_FIELDS = ["tenant_id", "workspace_id", "item_type", "item_id", "job_type", "job_instance_id"]


@pytest.fixture
async def running(jobs: TestJobs, start_server: ServerFactory) -> RunningServer:
    return await start_server(jobs.registry)


async def _call(running: RunningServer, call: str, key: pb.JobInstanceKey) -> grpc.aio.AioRpcError:
    if call == "create":
        request = pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL)
        return await rpc_error(running.stub.CreateJobInstance(request))
    if call == "get":
        return await rpc_error(running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=key)))
    if call == "cancel":
        return await rpc_error(running.stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=key)))
    return await rpc_error(running.stub.WatchJobInstance(pb.WatchJobInstanceRequest(key=key)).read())


@pytest.mark.parametrize("field", KEY_FIELDS)
@pytest.mark.parametrize("call", ["create", "get", "cancel", "watch"])
async def test_a_key_part_with_a_trailing_newline_is_invalid_argument(
    running: RunningServer, field: str, call: str
) -> None:
    key = new_key(ITEM_TYPE, job_types.COMPLETES)
    await running.stub.CreateJobInstance(pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL))
    setattr(key, field, getattr(key, field) + "\n")
    err = await _call(running, call, key)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = status_details(err)
    assert details.field_violations.keys() == {f"key.{field}"}
    assert list(details.error.message_parameters) == [f"key.{field}"]


@pytest.mark.parametrize("field", KEY_FIELDS[:-1])
async def test_a_list_filter_with_a_trailing_newline_is_invalid_argument(running: RunningServer, field: str) -> None:
    valid = {"item_type": ITEM_TYPE, "job_type": job_types.COMPLETES}.get(field, str(uuid.uuid4()))
    request = pb.ListJobInstancesRequest(tenant_id=str(uuid.uuid4()))
    setattr(request, field, valid + "\n")
    err = await rpc_error(running.stub.ListJobInstances(request))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert status_details(err).field_violations.keys() == {field}
