"""Cancel racing completion, many times: one terminal status per job, no illegal transition, no rewrite."""

from __future__ import annotations

import asyncio
import random

import grpc
import pytest

from fabric_jobs.v1 import job_service_pb2 as pb
from tests import jobs as job_types
from tests.conftest import new_key, wait_for_status
from tests.harness import RunningServer, ServerFactory
from tests.jobs import ITEM_TYPE, TestJobs

JOBS = 200
RANK = {
    pb.JOB_INSTANCE_STATUS_NOT_STARTED: 0,
    pb.JOB_INSTANCE_STATUS_IN_PROGRESS: 1,
    pb.JOB_INSTANCE_STATUS_COMPLETED: 2,
    pb.JOB_INSTANCE_STATUS_FAILED: 2,
    pb.JOB_INSTANCE_STATUS_CANCELLED: 2,
}
TERMINAL = 2


async def race(
    running: RunningServer, job_type: str, rng: random.Random
) -> tuple[pb.JobInstanceKey, list[pb.JobInstance], pb.JobInstance]:
    """Create a job and, a random instant later, cancel it, while watching it from the moment it exists.

    Returns what the watch saw and what the cancel answered.
    """
    key = new_key(ITEM_TYPE, job_type)

    async def create_and_watch() -> list[pb.JobInstance]:
        request = pb.CreateJobInstanceRequest(key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL)
        await running.stub.CreateJobInstance(request)
        stream = running.stub.WatchJobInstance(pb.WatchJobInstanceRequest(key=key))
        return [reply.job_instance async for reply in stream]

    async def cancel_soon() -> pb.JobInstance:
        await asyncio.sleep(rng.uniform(0, 0.02))
        for _ in range(500):
            try:
                reply = await running.stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=key))
            except grpc.aio.AioRpcError as err:
                if err.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                await asyncio.sleep(0.001)
            else:
                return reply.job_instance
        raise AssertionError("the job was never created")

    seen, answer = await asyncio.gather(create_and_watch(), cancel_soon())
    return key, seen, answer


def check_path(seen: list[pb.JobInstance]) -> pb.JobInstance:
    """NotStarted → InProgress → one terminal status, never backwards; the stream ends with that terminal state."""
    ranks = [RANK[job.status] for job in seen]
    assert ranks == sorted(ranks), [pb.JobInstanceStatus.Name(job.status) for job in seen]
    assert ranks[-1] == TERMINAL
    assert ranks.count(TERMINAL) == 1
    return seen[-1]


CANCEL_GRACE = 0.3
"""Short, so that a forced stop a Cancel armed would fire while the test still looks (after the sentinel's)."""


@pytest.mark.parametrize("job_type", [job_types.RACES, job_types.RACES_THREAD])
async def test_cancel_racing_completion_ends_in_exactly_one_terminal_state(
    jobs: TestJobs, start_server: ServerFactory, job_type: str
) -> None:
    running = await start_server(jobs.registry, cancel_wait=2.0, cancel_grace=CANCEL_GRACE)
    results = await asyncio.gather(*(race(running, job_type, jobs.rng) for _ in range(JOBS)))

    outcomes: dict[int, int] = {}
    firsts: dict[str, pb.JobInstance] = {}
    for key, seen, answer in results:
        terminal = check_path(seen)
        assert terminal.HasField("end_time")
        if RANK[answer.status] == TERMINAL:
            assert answer == terminal
        calls = jobs.runs[key.job_instance_id]
        assert calls <= 1
        if terminal.status == pb.JOB_INSTANCE_STATUS_COMPLETED or terminal.HasField("start_time"):
            assert calls == 1
        else:
            assert terminal.status == pb.JOB_INSTANCE_STATUS_CANCELLED
            assert calls == 0
        assert terminal.status != pb.JOB_INSTANCE_STATUS_FAILED, terminal
        outcomes[terminal.status] = outcomes.get(terminal.status, 0) + 1
        firsts[key.job_instance_id] = terminal
    assert sum(outcomes.values()) == JOBS

    # Every Cancel above may have armed a forced stop that fires CANCEL_GRACE after it. A sentinel that ignores
    # its token, cancelled after all of them, is stopped by force only once its own grace has run out, so once
    # its Cancel answers Cancelled every earlier grace has run out too: a late forced stop had its chance to
    # rewrite a finished job.
    sentinel = new_key(ITEM_TYPE, job_types.IGNORES_CANCEL)
    await running.stub.CreateJobInstance(
        pb.CreateJobInstanceRequest(key=sentinel, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL)
    )
    await wait_for_status(running.stub, sentinel, pb.JOB_INSTANCE_STATUS_IN_PROGRESS)
    stopped = (await running.stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=sentinel))).job_instance
    assert stopped.status == pb.JOB_INSTANCE_STATUS_CANCELLED, "the sentinel's grace ran out and it was stopped"
    assert (stopped.end_time.ToMilliseconds() - stopped.start_time.ToMilliseconds()) / 1000 >= CANCEL_GRACE

    for key, _, _ in results:
        again = (await running.stub.GetJobInstance(pb.GetJobInstanceRequest(key=key))).job_instance
        assert again == firsts[key.job_instance_id]
