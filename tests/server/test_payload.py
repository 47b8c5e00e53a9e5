"""The creation payload over gRPC: creation_payload_json kept exactly, the deprecated Struct still accepted,
rows of the previous version still loaded, and every bad payload an INVALID_ARGUMENT naming its field."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from fabric_jobs.server.backend import open_store
from fabric_jobs.server.model import InvokeType, JobKey, NewJob, now_ms
from fabric_jobs.server.settings import ServiceSettings
from fabric_jobs.v1 import job_service_pb2 as pb
from tests import jobs as job_types
from tests.conftest import new_key, rpc_error, status_details, wait_for_status
from tests.harness import RunningServer, ServerFactory, start_running_server
from tests.jobs import ITEM_TYPE, TestJobs

MANUAL = pb.JOB_INVOKE_TYPE_MANUAL
COMPLETED = pb.JOB_INSTANCE_STATUS_COMPLETED
FABRIC_PAYLOAD = '{"rows": 5, "big": 12345678901234567890, "ratio": 0.5, "name": "é"}'


@pytest.fixture
async def running(jobs: TestJobs, start_server: ServerFactory) -> RunningServer:
    return await start_server(jobs.registry)


def typed(value: Any) -> Any:
    """The value with the type of every number, key order included, so that 5 and 5.0 differ."""
    if isinstance(value, dict):
        return [(key, typed(child)) for key, child in value.items()]
    if isinstance(value, list):
        return [typed(child) for child in value]
    return (type(value).__name__, value)


def struct(**fields: Any) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(fields)
    return message


async def created_and_run(running: RunningServer, jobs: TestJobs, **request: Any) -> Any:
    key = new_key(ITEM_TYPE, job_types.RECORDS_PAYLOAD)
    response = await running.stub.CreateJobInstance(pb.CreateJobInstanceRequest(key=key, invoke_type=MANUAL, **request))
    assert response.created
    await wait_for_status(running.stub, key, COMPLETED)
    return jobs.payloads[key.job_instance_id]


async def test_creation_payload_json_reaches_the_handler_exactly(running: RunningServer, jobs: TestJobs) -> None:
    received = await created_and_run(running, jobs, creation_payload_json=FABRIC_PAYLOAD)
    assert typed(received) == typed(json.loads(FABRIC_PAYLOAD))
    assert list(received) == ["rows", "big", "ratio", "name"]


async def test_no_payload_is_an_empty_object(running: RunningServer, jobs: TestJobs) -> None:
    assert await created_and_run(running, jobs) == {}


async def test_a_client_of_the_deprecated_struct_still_works(running: RunningServer, jobs: TestJobs) -> None:
    received = await created_and_run(running, jobs, creation_payload=struct(rows=5, name="é", nested={"ok": True}))
    assert received == {"rows": 5.0, "name": "é", "nested": {"ok": True}}
    assert type(received["rows"]) is float  # a Struct carries every number as a double, as it always did


async def test_a_struct_and_json_of_the_same_values_are_the_same_request(running: RunningServer) -> None:
    key = new_key(ITEM_TYPE, job_types.RECORDS_PAYLOAD)
    first = pb.CreateJobInstanceRequest(key=key, invoke_type=MANUAL, creation_payload=struct(rows=5, name="é"))
    assert (await running.stub.CreateJobInstance(first)).created
    again = pb.CreateJobInstanceRequest(key=key, invoke_type=MANUAL, creation_payload_json='{"name":"é","rows":5}')
    assert not (await running.stub.CreateJobInstance(again)).created
    other = pb.CreateJobInstanceRequest(key=key, invoke_type=MANUAL, creation_payload_json='{"name":"é","rows":6}')
    conflict = await rpc_error(running.stub.CreateJobInstance(other))
    assert conflict.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_both_payload_fields_are_invalid_argument_naming_the_deprecated_one(running: RunningServer) -> None:
    key = new_key(ITEM_TYPE, job_types.RECORDS_PAYLOAD)
    request = pb.CreateJobInstanceRequest(
        key=key, invoke_type=MANUAL, creation_payload=struct(rows=5), creation_payload_json='{"rows": 5}'
    )
    err = await rpc_error(running.stub.CreateJobInstance(request))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(status_details(err).field_violations) == {"creation_payload"}
    assert "creation_payload_json" in status_details(err).field_violations["creation_payload"]
    missing = await rpc_error(running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=key)))
    assert missing.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"rows": 5',
        "[1, 2]",
        '"text"',
        "null",
        '{"n": NaN}',
        '{"n": Infinity}',
        '{"n": 1e400}',
        '{"n": ' + "9" * 101 + "}",
        '{"s": "\\ud800"}',
        '{"a":' * 33 + "1" + "}" * 33,
        "[" * 5000 + "]" * 5000,
    ],
    ids=[
        "not-json",
        "truncated",
        "array",
        "string",
        "null",
        "nan",
        "infinity",
        "float-overflow",
        "101-digit-integer",
        "lone-surrogate",
        "33-levels",
        "5000-levels",
    ],
)
async def test_bad_payload_json_is_invalid_argument_naming_creation_payload_json(
    running: RunningServer, text: str
) -> None:
    key = new_key(ITEM_TYPE, job_types.RECORDS_PAYLOAD)
    err = await rpc_error(
        running.stub.CreateJobInstance(
            pb.CreateJobInstanceRequest(key=key, invoke_type=MANUAL, creation_payload_json=text)
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(status_details(err).field_violations) == {"creation_payload_json"}
    missing = await rpc_error(running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=key)))
    assert missing.code() == grpc.StatusCode.NOT_FOUND


async def test_a_row_stored_by_the_previous_version_loads_and_matches_its_repeat(
    database: str, jobs: TestJobs, start_server: ServerFactory
) -> None:
    """The previous version stored sorted keys and every number as a float (it came from a Struct)."""
    key = new_key(ITEM_TYPE, job_types.RECORDS_PAYLOAD)
    store = open_store(database)
    await store.open()
    try:
        old_text = '{"big":1.2345678901234567e+19,"name":"é","rows":5.0}'
        await store.insert(NewJob(JobKey(**_fields(key)), InvokeType.MANUAL, old_text, now_ms()))
    finally:
        await store.close()

    running = await start_server(jobs.registry)
    await wait_for_status(running.stub, key, COMPLETED)
    assert typed(jobs.payloads[key.job_instance_id]) == typed(json.loads(old_text))
    repeat = pb.CreateJobInstanceRequest(
        key=key, invoke_type=MANUAL, creation_payload_json='{"rows": 5, "big": 12345678901234567168, "name": "é"}'
    )
    assert not (await running.stub.CreateJobInstance(repeat)).created


def _fields(key: pb.JobInstanceKey) -> dict[str, str]:
    return {field.name: getattr(key, field.name) for field in pb.JobInstanceKey.DESCRIPTOR.fields}


async def test_postgresql_with_a_worker_gives_the_handler_the_payload_exactly(
    postgres_url: str, jobs: TestJobs
) -> None:
    settings = ServiceSettings(database=postgres_url, cancel_wait=1.0, cancel_grace=1.0, shutdown_grace=0.5)
    running = await start_running_server(settings, jobs.registry, run_handlers=True)
    try:
        received = await created_and_run(running, jobs, creation_payload_json=FABRIC_PAYLOAD)
    finally:
        await running.stop()
    assert typed(received) == typed(json.loads(FABRIC_PAYLOAD))
