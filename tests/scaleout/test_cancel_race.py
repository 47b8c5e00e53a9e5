"""Cancel racing completion across processes, many times: the JobService in this process, the handlers
in two `fabric-jobs worker` processes. Each job is watched from its creation; no watch ever sees an
illegal transition, and the Cancel's answer agrees with how the job ended."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest

from fabric_jobs.v1 import job_service_pb2 as pb
from tests import jobs
from tests.conftest import new_key
from tests.harness import RunningServer
from tests.scaleout.conftest import ServiceFactory, WorkerFactory

JOBS = 100
AT_ONCE = 10
HANDLER_DELAY_SECONDS = (0.0, 0.2)
CANCEL_AFTER_SECONDS = (0.0, 0.15)
"""The Cancel is sent this long after the Create returned: before the worker claims the job, while its
handler runs, or after it completed."""
CANCEL_WAIT_SECONDS = 5.0
WATCH_SECONDS = 20.0
RANK = {
    pb.JOB_INSTANCE_STATUS_NOT_STARTED: 0,
    pb.JOB_INSTANCE_STATUS_IN_PROGRESS: 1,
    pb.JOB_INSTANCE_STATUS_COMPLETED: 2,
    pb.JOB_INSTANCE_STATUS_CANCELLED: 2,
}
TERMINAL = 2


async def race(
    service: RunningServer, rng: random.Random
) -> tuple[pb.JobInstanceKey, list[pb.JobInstance], pb.JobInstance]:
    """Create a quick job, watch it from then on, and cancel it a random instant later.

    Returns every state the watch saw and the Cancel's answer.
    """
    key = new_key(jobs.ITEM_TYPE, jobs.QUICK)
    creation_payload_json = json.dumps({jobs.DELAY_FIELD: rng.uniform(*HANDLER_DELAY_SECONDS)})
    cancel_after = rng.uniform(*CANCEL_AFTER_SECONDS)
    request = pb.CreateJobInstanceRequest(
        key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL, creation_payload_json=creation_payload_json
    )
    await service.stub.CreateJobInstance(request)

    async def watch() -> list[pb.JobInstance]:
        stream = service.stub.WatchJobInstance(pb.WatchJobInstanceRequest(key=key))
        return [reply.job_instance async for reply in stream]

    async def cancel_soon() -> pb.JobInstance:
        await asyncio.sleep(cancel_after)
        return (await service.stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=key))).job_instance

    seen, answer = await asyncio.wait_for(asyncio.gather(watch(), cancel_soon()), WATCH_SECONDS)
    return key, seen, answer


def check_path(seen: list[pb.JobInstance]) -> pb.JobInstance:
    """Statuses only move forward, NotStarted → InProgress → Completed or Cancelled, the terminal one last;
    a start time once set never changes, and an end time appears only with the terminal status."""
    names = [pb.JobInstanceStatus.Name(job.status) for job in seen]
    assert all(job.status in RANK for job in seen), names
    ranks = [RANK[job.status] for job in seen]
    assert ranks == sorted(ranks), names
    assert ranks.count(TERMINAL) == 1, names
    assert ranks[-1] == TERMINAL, names
    start_times = {job.start_time.ToMilliseconds() for job in seen if job.HasField("start_time")}
    assert len(start_times) <= 1, seen
    assert all(job.HasField("end_time") == (RANK[job.status] == TERMINAL) for job in seen), seen
    return seen[-1]


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_cancel_racing_completion_across_processes_never_makes_an_illegal_transition(
    start_service: ServiceFactory, start_worker: WorkerFactory, run_log: Path, rng: random.Random
) -> None:
    service = await start_service(cancel_wait=CANCEL_WAIT_SECONDS)
    await asyncio.gather(start_worker(), start_worker())
    slots = asyncio.Semaphore(AT_ONCE)

    async def one_race() -> tuple[pb.JobInstanceKey, list[pb.JobInstance], pb.JobInstance]:
        async with slots:
            return await race(service, rng)

    results = await asyncio.gather(*(one_race() for _ in range(JOBS)))

    started = jobs.read_run_log(run_log)
    outcomes: dict[str, int] = {}
    for key, seen, answer in results:
        final = check_path(seen)
        if RANK[answer.status] == TERMINAL:
            assert answer == final, (answer, final)
        else:
            assert answer.status == pb.JOB_INSTANCE_STATUS_IN_PROGRESS, answer
            assert answer.cancel_requested
        assert final.status in (pb.JOB_INSTANCE_STATUS_COMPLETED, pb.JOB_INSTANCE_STATUS_CANCELLED), final
        # A handler runs at most once and only for a job that started; a job claimed just as its cancel arrived
        # has a start time but ends Cancelled before its handler is called.
        assert started[key.job_instance_id] <= (1 if final.HasField("start_time") else 0), final
        if final.status == pb.JOB_INSTANCE_STATUS_COMPLETED:
            assert started[key.job_instance_id] == 1, final
        if final.status == pb.JOB_INSTANCE_STATUS_CANCELLED and final.HasField("start_time"):
            assert final.end_time.ToMilliseconds() >= final.start_time.ToMilliseconds()
        assert (await service.stub.GetJobInstance(pb.GetJobInstanceRequest(key=key))).job_instance == final
        outcome = pb.JobInstanceStatus.Name(final.status) + (" after start" if final.HasField("start_time") else "")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert sum(started.values()) == len(started)
    print(f"outcomes of {JOBS} races: {outcomes}")
