"""Request bytes that are not a valid message are INVALID_ARGUMENT with Fabric's error details, on every
service of the server; never UNKNOWN with the decoder's exception text, never an ERROR log line."""

from __future__ import annotations

import logging

import grpc
import pytest

from fabric_jobs.v1 import job_service_pb2 as pb
from tests import jobs as job_types
from tests.conftest import new_key, rpc_error, status_details
from tests.harness import RunningServer, ServerFactory
from tests.jobs import ITEM_TYPE, TestJobs

JOBS = "/fabric_jobs.v1.JobService/"
UNARY_METHODS = [
    JOBS + "CreateJobInstance",
    JOBS + "GetJobInstance",
    JOBS + "CancelJobInstance",
    JOBS + "ListJobInstances",
    "/grpc.health.v1.Health/Check",
]
STREAM_METHODS = [JOBS + "WatchJobInstance", "/grpc.health.v1.Health/Watch"]
INTERNAL_NAMES = ("DecodeError", "google.protobuf", "Exception", "Error parsing", "upb", "class ")


def _length_delimited(field: int, payload: bytes) -> bytes:
    size, varint = len(payload), b""
    while True:
        low, size = size & 0x7F, size >> 7
        varint += bytes([low | 0x80 if size else low])
        if not size:
            break
    return bytes([field << 3 | 2]) + varint + payload


def _nested_struct(depth: int) -> bytes:
    """A google.protobuf.Struct {"a": {"a": ...}} `depth` levels deep, written by hand: protobuf refuses to build it."""
    struct = b""
    for _ in range(depth):
        entry = _length_delimited(1, b"a") + _length_delimited(2, _length_delimited(5, struct))
        struct = _length_delimited(1, entry)
    return struct


def _invalid_utf8() -> bytes:
    key = new_key(ITEM_TYPE, job_types.COMPLETES, tenant_id="XXXX")
    raw = pb.GetJobInstanceRequest(key=key).SerializeToString()
    return raw.replace(b"XXXX", b"\xff\xfe\xfd\xfc")


BAD_BYTES = {
    "garbage": b"\xff\xff\xff\xff\x07garbage",
    "invalid-utf8": _invalid_utf8(),
    "struct-nested-40": pb.CreateJobInstanceRequest(key=new_key(ITEM_TYPE, job_types.COMPLETES)).SerializeToString()
    + _length_delimited(3, _nested_struct(40)),
}
"""Each is the start of a request of every method above: a key (field 1) whose UTF-8 is bad is bad everywhere."""


@pytest.fixture
async def running(jobs: TestJobs, start_server: ServerFactory) -> RunningServer:
    return await start_server(jobs.registry)


def _identity(data: bytes) -> bytes:
    return data


def _assert_invalid_argument(err: grpc.aio.AioRpcError) -> None:
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
    message = err.details() or ""
    assert not any(name in message for name in INTERNAL_NAMES), message
    details = status_details(err)
    assert details.reason == "InvalidRequest"
    assert details.error.error_code == "InvalidRequest"
    assert details.error.source == pb.ERROR_SOURCE_USER
    assert details.error.is_permanent
    assert list(details.field_violations) == ["request"]


UNARY_CASES = [(method, bad) for method in UNARY_METHODS for bad in ("garbage", "invalid-utf8")] + [
    (JOBS + "CreateJobInstance", "struct-nested-40")
]


@pytest.mark.parametrize(("method", "bad"), UNARY_CASES)
async def test_undecodable_unary_request_is_invalid_argument(
    running: RunningServer, method: str, bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    call = running.channel.unary_unary(method, request_serializer=_identity, response_deserializer=_identity)
    with caplog.at_level(logging.INFO):
        err = await rpc_error(call(BAD_BYTES[bad], timeout=10))
    _assert_invalid_argument(err)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("bad", ["garbage", "invalid-utf8"])
@pytest.mark.parametrize("method", STREAM_METHODS)
async def test_undecodable_stream_request_is_invalid_argument(
    running: RunningServer, method: str, bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    call = running.channel.unary_stream(method, request_serializer=_identity, response_deserializer=_identity)
    with caplog.at_level(logging.INFO):
        err = await rpc_error(call(BAD_BYTES[bad], timeout=10).read())
    _assert_invalid_argument(err)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_the_server_still_answers_after_undecodable_requests(running: RunningServer) -> None:
    call = running.channel.unary_unary(
        JOBS + "GetJobInstance", request_serializer=_identity, response_deserializer=_identity
    )
    for raw in BAD_BYTES.values():
        await rpc_error(call(raw, timeout=10))
    key = new_key(ITEM_TYPE, job_types.COMPLETES)
    created = await running.stub.CreateJobInstance(
        pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL)
    )
    assert created.job_instance.key == key
