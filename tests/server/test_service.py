"""The job instance semantics over gRPC: create, get, outcomes of handlers, errors and bad input."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest

from fabric_jobs import demo
from fabric_jobs.errors import details_to_pb
from fabric_jobs.v1 import job_service_pb2 as pb
from tests import jobs as job_types
from tests.conftest import new_key, rpc_error, status_details, wait_for_status
from tests.harness import RunningServer, ServerFactory
from tests.jobs import ITEM_TYPE, TestJobs

MANUAL = pb.JOB_INVOKE_TYPE_MANUAL


@pytest.fixture
async def running(jobs: TestJobs, start_server: ServerFactory) -> RunningServer:
    return await start_server(jobs.registry)


def payload(**fields: Any) -> str:
    return json.dumps(fields)


def create_request(
    key: pb.JobInstanceKey, invoke_type: pb.JobInvokeType.ValueType = MANUAL, **fields: Any
) -> pb.CreateJobInstanceRequest:
    return pb.CreateJobInstanceRequest(key=key, invoke_type=invoke_type, creation_payload_json=payload(**fields))


async def test_create_queues_the_job_then_runs_it(running: RunningServer, jobs: TestJobs) -> None:
    key = new_key(ITEM_TYPE, job_types.GATED)
    reply = await running.stub.CreateJobInstance(create_request(key))
    assert reply.created
    assert reply.job_instance.status in (pb.JOB_INSTANCE_STATUS_NOT_STARTED, pb.JOB_INSTANCE_STATUS_IN_PROGRESS)
    assert reply.job_instance.key == key
    assert reply.job_instance.invoke_type == MANUAL
    assert reply.job_instance.HasField("create_time")
    assert not reply.job_instance.HasField("end_time")

    running_job = await wait_for_status(running.stub, key, pb.JOB_INSTANCE_STATUS_IN_PROGRESS)
    assert running_job.HasField("start_time")
    assert not running_job.HasField("end_time")
    assert running_job.start_time.ToMilliseconds() >= running_job.create_time.ToMilliseconds()

    jobs.gate.set()
    done = await wait_for_status(running.stub, key, pb.JOB_INSTANCE_STATUS_COMPLETED)
    assert done.start_time == running_job.start_time
    assert done.end_time.ToMilliseconds() >= done.start_time.ToMilliseconds()
    assert not done.HasField("error_details")


async def test_identical_create_is_idempotent_and_runs_the_handler_once(running: RunningServer, jobs: TestJobs) -> None:
    key = new_key(ITEM_TYPE, job_types.COMPLETES)
    request = create_request(key, a=1, nested={"b": [1, "x"]})
    replies = await asyncio.gather(*(running.stub.CreateJobInstance(request) for _ in range(5)))
    assert sorted(reply.created for reply in replies) == [False, False, False, False, True]
    first = await wait_for_status(running.stub, key, pb.JOB_INSTANCE_STATUS_COMPLETED)

    again = await running.stub.CreateJobInstance(request)
    assert not again.created
    assert again.job_instance == first
    assert jobs.runs[key.job_instance_id] == 1


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"invoke_type": pb.JOB_INVOKE_TYPE_SCHEDULED}, id="invoke_type"),
        pytest.param({"a": 2}, id="payload"),
        pytest.param({"a": 1, "extra": True}, id="payload-field"),
    ],
)
async def test_same_key_with_another_request_is_a_conflict(running: RunningServer, change: dict[str, Any]) -> None:
    key = new_key(ITEM_TYPE, job_types.COMPLETES)
    await running.stub.CreateJobInstance(create_request(key, a=1))
    invoke_type = change.pop("invoke_type", MANUAL)
    other = create_request(key, invoke_type, **(change or {"a": 1}))

    err = await rpc_error(running.stub.CreateJobInstance(other))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert status_details(err).reason == "JobInstanceConflict"


@pytest.mark.parametrize(
    ("item_type", "job_type"),
    [(ITEM_TYPE, "notRegistered"), ("Other.Item", job_types.COMPLETES), (demo.ITEM_TYPE, job_types.COMPLETES)],
)
async def test_unregistered_job_type_is_refused_and_nothing_is_stored(
    running: RunningServer, item_type: str, job_type: str
) -> None:
    key = new_key(item_type, job_type)
    err = await rpc_error(running.stub.CreateJobInstance(create_request(key)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert status_details(err).reason == "UnsupportedJobType"

    missing = await rpc_error(running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=key)))
    assert missing.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("call", ["get", "cancel"])
async def test_unknown_key_is_not_found(running: RunningServer, call: str) -> None:
    key = new_key(ITEM_TYPE, job_types.COMPLETES)
    if call == "get":
        err = await rpc_error(running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=key)))
    else:
        err = await rpc_error(running.stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=key)))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    details = status_details(err)
    assert details.reason == "JobInstanceNotFound"
    assert details.error.error_code == "JobInstanceNotFound"


@pytest.mark.parametrize("field", ["tenant_id", "workspace_id", "item_id", "job_type", "job_instance_id"])
async def test_a_key_differing_in_one_field_is_another_job(running: RunningServer, field: str) -> None:
    key = new_key(ITEM_TYPE, job_types.COMPLETES)
    await running.stub.CreateJobInstance(create_request(key))
    await wait_for_status(running.stub, key, pb.JOB_INSTANCE_STATUS_COMPLETED)
    other = pb.JobInstanceKey()
    other.CopyFrom(key)
    setattr(other, field, job_types.GATED if field == "job_type" else new_key(ITEM_TYPE, "x").tenant_id)

    err = await rpc_error(running.stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=other)))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert (await running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=key))).job_instance.status == (
        pb.JOB_INSTANCE_STATUS_COMPLETED
    )


async def test_uuids_are_case_insensitive(running: RunningServer) -> None:
    key = new_key(ITEM_TYPE, job_types.COMPLETES)
    await running.stub.CreateJobInstance(create_request(key))
    upper = pb.JobInstanceKey(
        tenant_id=key.tenant_id.upper(),
        workspace_id=key.workspace_id.upper(),
        item_type=key.item_type,
        item_id=key.item_id.upper(),
        job_type=key.job_type,
        job_instance_id=key.job_instance_id.upper(),
    )
    found = await wait_for_status(running.stub, upper, pb.JOB_INSTANCE_STATUS_COMPLETED)
    assert found.key == key

    again = await running.stub.CreateJobInstance(create_request(upper))
    assert not again.created


async def test_handler_raising_job_failed_ends_failed_with_its_details(running: RunningServer) -> None:
    key = new_key(ITEM_TYPE, job_types.FAILS)
    await running.stub.CreateJobInstance(create_request(key))
    failed = await wait_for_status(running.stub, key, pb.JOB_INSTANCE_STATUS_FAILED)
    assert failed.error_details == details_to_pb(job_types.FAILURE.details)
    assert failed.HasField("start_time")
    assert failed.HasField("end_time")


async def test_handler_raising_anything_else_ends_failed_job_execution_failed(running: RunningServer) -> None:
    key = new_key(ITEM_TYPE, job_types.CRASHES)
    await running.stub.CreateJobInstance(create_request(key))
    failed = await wait_for_status(running.stub, key, pb.JOB_INSTANCE_STATUS_FAILED)
    assert failed.error_details.error_code == "JobExecutionFailed"
    assert "RuntimeError" in failed.error_details.message
    assert "boom" not in failed.error_details.message, "the exception's text may hold internals; only the log has it"
    assert failed.HasField("end_time")


async def test_error_status_carries_rich_details(running: RunningServer) -> None:
    key = new_key(ITEM_TYPE, job_types.COMPLETES)
    missing = status_details(await rpc_error(running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=key))))
    assert missing.domain == "fabric-jobs"
    assert missing.error.error_code == missing.reason == "JobInstanceNotFound"
    assert missing.error.message
    assert missing.field_violations == {}

    bad = pb.GetJobInstanceRequest(key=pb.JobInstanceKey(tenant_id="nope"))
    invalid = status_details(await rpc_error(running.stub.GetJobInstance(bad)))
    assert invalid.domain == "fabric-jobs"
    assert invalid.reason == invalid.error.error_code == "InvalidRequest"
    assert invalid.field_violations.keys() == {
        "key.tenant_id",
        "key.workspace_id",
        "key.item_type",
        "key.item_id",
        "key.job_type",
        "key.job_instance_id",
    }
    assert set(invalid.error.message_parameters) == invalid.field_violations.keys()


def _broken(**fields: str) -> pb.JobInstanceKey:
    key = new_key(ITEM_TYPE, job_types.COMPLETES)
    for name, value in fields.items():
        setattr(key, name, value)
    return key


@pytest.mark.parametrize(
    ("request_", "fields"),
    [
        pytest.param(pb.CreateJobInstanceRequest(invoke_type=MANUAL), {"key"}, id="missing-key"),
        pytest.param(
            pb.CreateJobInstanceRequest(key=_broken(tenant_id="not-a-uuid"), invoke_type=MANUAL),
            {"key.tenant_id"},
            id="malformed-tenant",
        ),
        pytest.param(
            pb.CreateJobInstanceRequest(
                key=_broken(workspace_id="1234", item_id="", job_instance_id="g" * 36), invoke_type=MANUAL
            ),
            {"key.workspace_id", "key.item_id", "key.job_instance_id"},
            id="malformed-uuids",
        ),
        pytest.param(
            pb.CreateJobInstanceRequest(key=_broken(item_type="", job_type="has space"), invoke_type=MANUAL),
            {"key.item_type", "key.job_type"},
            id="bad-names",
        ),
        pytest.param(pb.CreateJobInstanceRequest(key=_broken()), {"invoke_type"}, id="invoke-type-unspecified"),
    ],
)
async def test_bad_create_is_invalid_argument_naming_the_fields(
    running: RunningServer, request_: pb.CreateJobInstanceRequest, fields: set[str]
) -> None:
    err = await rpc_error(running.stub.CreateJobInstance(request_))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    named = status_details(err).field_violations.keys()
    assert fields <= named
    assert all(name == "key" or name in fields for name in named if not name.startswith("key.")), named


@pytest.mark.parametrize("number", [4, 99, -1])
async def test_an_invoke_type_number_it_does_not_know_is_stored_as_unknown_future_value(
    running: RunningServer, number: int
) -> None:
    """As over REST: a newer client's invoke type is taken as UNKNOWN_FUTURE_VALUE; only UNSPECIFIED is refused."""
    key = new_key(ITEM_TYPE, job_types.COMPLETES)
    reply = await running.stub.CreateJobInstance(create_request(key, number))  # type: ignore[arg-type]
    assert reply.created
    assert reply.job_instance.invoke_type == pb.JOB_INVOKE_TYPE_UNKNOWN_FUTURE_VALUE
    again = await running.stub.CreateJobInstance(create_request(key, pb.JOB_INVOKE_TYPE_UNKNOWN_FUTURE_VALUE))
    assert not again.created, "the same request: the value it was stored as"
    conflict = await rpc_error(running.stub.CreateJobInstance(create_request(key, MANUAL)))
    assert conflict.code() == grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.parametrize("call", ["get", "cancel"])
async def test_bad_key_on_get_and_cancel_is_invalid_argument(running: RunningServer, call: str) -> None:
    key = _broken(job_instance_id="{not-a-uuid}")
    if call == "get":
        err = await rpc_error(running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=key)))
    else:
        err = await rpc_error(running.stub.CancelJobInstance(pb.CancelJobInstanceRequest()))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert status_details(err).field_violations


async def test_oversized_payload_is_invalid_argument(jobs: TestJobs, start_server: ServerFactory) -> None:
    running = await start_server(jobs.registry, max_payload_bytes=1024)
    key = new_key(ITEM_TYPE, job_types.COMPLETES)
    err = await rpc_error(running.stub.CreateJobInstance(create_request(key, blob="x" * 2000)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(status_details(err).field_violations) == {"creation_payload_json"}
    missing = await rpc_error(running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=key)))
    assert missing.code() == grpc.StatusCode.NOT_FOUND

    fits = await running.stub.CreateJobInstance(create_request(key, blob="x" * 900))
    assert fits.created


@pytest.mark.parametrize("number", [float("nan"), float("inf")])
async def test_non_finite_number_in_payload_is_invalid_argument(running: RunningServer, number: float) -> None:
    key = new_key(ITEM_TYPE, job_types.COMPLETES)
    err = await rpc_error(running.stub.CreateJobInstance(create_request(key, value=number)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(status_details(err).field_violations) == {"creation_payload_json"}
