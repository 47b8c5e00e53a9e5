"""A gRPC load tool: grpc.aio stubs over one channel, `concurrency` calls in flight, messages prebuilt.

python -m benchmarks.grpc_load < spec.json      (prints one LoadResult as JSON)

operation is "get" (GetJobInstance) or "cancel" (CancelJobInstance); expect, when given, is the
JobInstanceStatus name the reply must carry (for example JOB_INSTANCE_STATUS_CANCELLED).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import grpc

from benchmarks.measure import LoadResult, LoadSpec, drive, read_spec, write_result
from fabric_jobs.server.edge.convert import key_to_pb
from fabric_jobs.server.model import JobKey
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc

Message = pb.GetJobInstanceRequest | pb.CancelJobInstanceRequest


def key_message(fields: list[str]) -> pb.JobInstanceKey:
    return key_to_pb(JobKey(*fields))


def _caller(
    stub: pb_grpc.JobServiceAsyncStub, operation: str, expect: int | None
) -> Callable[[Message], Awaitable[bool]]:
    if operation == "get":

        async def get(message: Message) -> bool:
            assert isinstance(message, pb.GetJobInstanceRequest)
            reply = await stub.GetJobInstance(message, timeout=30)
            return expect is None or reply.job_instance.status == expect

        return get
    if operation == "cancel":

        async def cancel(message: Message) -> bool:
            assert isinstance(message, pb.CancelJobInstanceRequest)
            reply = await stub.CancelJobInstance(message, timeout=30)
            return expect is None or reply.job_instance.status == expect

        return cancel
    raise ValueError(f"unknown operation {operation!r}")


async def run(spec: LoadSpec) -> LoadResult:
    messages: list[Message]
    if spec.operation == "get":
        messages = [pb.GetJobInstanceRequest(key=key_message(fields)) for fields in spec.items]
    else:
        messages = [pb.CancelJobInstanceRequest(key=key_message(fields)) for fields in spec.items]
    expect = None if spec.expect is None else pb.JobInstanceStatus.Value(spec.expect)
    async with grpc.aio.insecure_channel(spec.target) as channel:
        await asyncio.wait_for(channel.channel_ready(), 10)
        call = _caller(pb_grpc.JobServiceStub(channel), spec.operation, expect)
        return await drive(spec, messages, [call] * spec.concurrency)


def main() -> None:
    write_result(asyncio.run(run(read_spec())))


if __name__ == "__main__":
    main()
