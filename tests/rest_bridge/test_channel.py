"""The bridge's channel to several JobService replicas: a replica that stops does not fail the bridge's calls."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from fabric_jobs.rest_bridge.channel import job_service_channel
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc
from tests.conftest import new_key, wait_for_status, wait_until
from tests.harness import ServerFactory
from tests.jobs import IGNORES_CANCEL, ITEM_TYPE, TestJobs


async def test_a_call_a_stopping_replica_ends_after_its_grace_is_retried_on_the_other(
    start_server: ServerFactory, rng: random.Random, caplog: pytest.LogCaptureFixture
) -> None:
    """A replica stopping gracefully ends the calls it has not finished within its grace (UNAVAILABLE); the
    channel retries them on the other replica. (Calls that reach a replica as it stops end CANCELLED: see
    tests/scaleout/test_multiprocess.py, which freezes a replica process to make them.)"""
    caplog.set_level(logging.INFO, logger="fabric_jobs.server.lifecycle.manager")
    with TestJobs(rng) as jobs:
        stopping, other = [await start_server(jobs.registry, cancel_wait=3.0, cancel_grace=30.0) for _ in "ab"]
        key = new_key(ITEM_TYPE, IGNORES_CANCEL)
        create = pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL)
        await stopping.stub.CreateJobInstance(create)
        await wait_for_status(stopping.stub, key, pb.JOB_INSTANCE_STATUS_IN_PROGRESS)

        async with job_service_channel(f"ipv4:{stopping.server.address},{other.server.address}") as channel:
            stub = pb_grpc.JobServiceStub(channel)
            for _ in range(10):
                await stub.GetJobInstance(pb.GetJobInstanceRequest(key=key), timeout=5)
            request = pb.CancelJobInstanceRequest(key=key)
            one_on_each = [asyncio.ensure_future(stub.CancelJobInstance(request, timeout=10)) for _ in "ab"]

            def both_waiting() -> bool:
                return sum("cancel asked" in record.getMessage() for record in caplog.records) == 2

            await wait_until(both_waiting, what="both replicas waiting for the handler to stop")
            await stopping.server.stop(grace=0.1)
            answers = await asyncio.gather(*one_on_each)

    statuses = {answer.job_instance.status for answer in answers}
    # The stopping replica ends the job, whose cancel was asked, Cancelled at the end of its shutdown grace.
    assert statuses <= {pb.JOB_INSTANCE_STATUS_IN_PROGRESS, pb.JOB_INSTANCE_STATUS_CANCELLED}, answers
