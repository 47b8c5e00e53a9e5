"""Scale-out as deployed: one REST bridge, two gRPC replicas and two workers, all real `fabric-jobs` processes
on one PostgreSQL database; one worker killed with SIGKILL while it runs jobs, one replica stopped."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from random import Random
from typing import Any, TypeVar

import grpc
import pytest

from fabric_jobs.rest_bridge.mapping import STATUS_NAMES
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc
from tests.conftest import wait_until
from tests.jobs import DELAY_FIELD, ITEM_TYPE, RUN_LOG_VARIABLE, WAITS, read_run_log
from tests.processes import REPOSITORY_ROOT, Processes, Serve, clean_env, launch, stop
from tests.rest_bridge.client import TERMINAL, Bridge, JobRef, client_at

T = TypeVar("T")

JOBS = "tests.jobs:registry"
LEASE_SECONDS = "2"
JOB_COUNT = 200
CANCEL_BATCH = JOB_COUNT // 4
"""Half the jobs are cancelled: one batch before the worker is killed, one after."""
SETTLE_SECONDS = 40.0
"""Every job is terminal this long after the second batch of cancels, or it is stuck."""
CONCURRENT_CALLS = 16
DETECTION_BOUND_MS = 5 * 1000 * int(LEASE_SECONDS)
"""A killed worker's jobs end Failed within a few lease periods (heartbeat timeout, then the next upkeep)."""


@pytest.fixture
def processes() -> Iterator[Processes]:
    with Processes() as running:
        yield running


def start_replica(processes: Processes, database: str) -> Serve:
    args = ["grpc", "--dev", "--grpc-port", "0", "--database", database, "--jobs", JOBS]
    args += ["--lease-seconds", LEASE_SECONDS, "--cancel-wait", "5"]
    return processes.track(launch(args, grpc=True, cwd=REPOSITORY_ROOT))


def start_worker(processes: Processes, database: str, run_log: Path) -> Serve:
    args = ["worker", "--database", database, "--jobs", JOBS, "--concurrency", "16"]
    args += ["--lease-seconds", LEASE_SECONDS, "--cancel-grace", "1"]
    env = clean_env(**{RUN_LOG_VARIABLE: str(run_log)})
    return processes.track(launch(args, started="fabric-jobs: worker started", cwd=REPOSITORY_ROOT, env=env))


def start_bridge(processes: Processes, replicas: list[Serve]) -> Serve:
    target = "ipv4:" + ",".join(replica.grpc_address for replica in replicas)
    return processes.track(launch(["rest", "--dev", "--rest-port", "0", "--grpc-target", target], rest=True))


async def bounded(calls: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run `calls`, CONCURRENT_CALLS at a time; the first to fail cancels the others."""
    slots = asyncio.Semaphore(CONCURRENT_CALLS)

    async def in_slot(call: Coroutine[Any, Any, T]) -> T:
        async with slots:
            return await call

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(in_slot(call)) for call in calls]
    return [task.result() for task in tasks]


async def in_parallel(*starts: Callable[[], Serve]) -> list[Serve]:
    return list(await asyncio.gather(*(asyncio.to_thread(start) for start in starts)))


def epoch_ms(utc: str | None) -> int | None:
    return None if utc is None else round(datetime.fromisoformat(utc).timestamp() * 1000)


async def create_all(bridge: Bridge, jobs: dict[str, JobRef], rng: Random) -> None:
    """Create `jobs` through the bridge, each running from 1.5 to 3 s unless cancelled."""

    async def create(job: JobRef, seconds: float) -> None:
        response = await bridge.create(job, {"invokeType": "Manual", "creationPayload": {DELAY_FIELD: seconds}})
        assert response.status_code == 202, response.text

    durations = [round(rng.uniform(1.5, 3.0), 1) for _ in jobs]
    await bounded(create(job, seconds) for job, seconds in zip(jobs.values(), durations, strict=True))


async def cancel_all(stub: pb_grpc.JobServiceAsyncStub, jobs: list[JobRef]) -> dict[str, str]:
    """Cancel `jobs` over gRPC; the status each answer gave."""

    async def cancel(job: JobRef) -> tuple[str, str]:
        response = await stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=job.key), timeout=30)
        return job.job_instance_id, STATUS_NAMES[response.job_instance.status]

    return dict(await bounded(cancel(job) for job in jobs))


def pick_to_cancel(candidates: list[str], started: set[str], count: int, rng: Random) -> list[str]:
    """`count` of `candidates`, half of them (or as many as there are) among the `started` ones."""
    started_ones = sorted(started.intersection(candidates))
    chosen = rng.sample(started_ones, min(count // 2, len(started_ones)))
    others = sorted(set(candidates) - set(chosen))
    return chosen + rng.sample(others, count - len(chosen))


async def final_states(bridge: Bridge, jobs: dict[str, JobRef], within: float) -> dict[str, dict[str, Any]]:
    """Poll Get until every job is terminal; fail naming the ones still not terminal after `within` seconds."""
    latest: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + within
    while pending := [job for job_id, job in jobs.items() if latest.get(job_id, {}).get("status") not in TERMINAL]:
        if time.monotonic() > deadline:
            stuck = [latest.get(job.job_instance_id) for job in pending]
            pytest.fail(f"{len(pending)} job(s) not terminal after {within}s: {stuck}")
        states = await bounded(bridge.state(job) for job in pending)
        latest |= {job.job_instance_id: state for job, state in zip(pending, states, strict=True)}
        await asyncio.sleep(0.2)
    return latest


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_jobs_end_right_across_processes_when_a_worker_is_killed(
    postgres_url: str, tmp_path: Path, rng: Random, processes: Processes
) -> None:
    began = time.monotonic()
    killed_log, survivor_log = tmp_path / "killed-worker.log", tmp_path / "surviving-worker.log"
    launched = await in_parallel(
        lambda: start_replica(processes, postgres_url),
        lambda: start_replica(processes, postgres_url),
        lambda: start_worker(processes, postgres_url, killed_log),
        lambda: start_worker(processes, postgres_url, survivor_log),
    )
    replicas, doomed = launched[:2], launched[2]
    bridge_process = start_bridge(processes, replicas)
    started_in = time.monotonic() - began

    jobs = {job.job_instance_id: job for job in (JobRef(item_type=ITEM_TYPE, job_type=WAITS) for _ in range(JOB_COUNT))}
    async with client_at(bridge_process.rest_url) as http, grpc.aio.insecure_channel(replicas[1].grpc_address) as chan:
        bridge, canceller = Bridge(http), pb_grpc.JobServiceStub(chan)
        await create_all(bridge, jobs, rng)
        created_in = time.monotonic() - began

        def started_on_both() -> bool:
            return bool(read_run_log(killed_log)) and bool(read_run_log(survivor_log))

        await wait_until(started_on_both, within=20, what="both workers running jobs")
        started = set(read_run_log(killed_log) + read_run_log(survivor_log))
        first = pick_to_cancel(list(jobs), started, CANCEL_BATCH, rng)
        answers = await cancel_all(canceller, [jobs[job_id] for job_id in first])

        doomed.process.send_signal(signal.SIGKILL)
        killed_at_ms = time.time_ns() // 1_000_000
        doomed.process.wait(timeout=10)
        killed_after = time.monotonic() - began

        started = set(read_run_log(killed_log) + read_run_log(survivor_log))
        second = pick_to_cancel(sorted(set(jobs) - set(first)), started, JOB_COUNT // 2 - len(first), rng)
        answers |= await cancel_all(canceller, [jobs[job_id] for job_id in second])
        finals = await final_states(bridge, jobs, SETTLE_SECONDS)
    settled_after = time.monotonic() - began

    ran_on_killed, ran_on_survivor = read_run_log(killed_log), read_run_log(survivor_log)
    runs = ran_on_killed + ran_on_survivor
    assert not {job_id: count for job_id, count in runs.items() if count > 1}, "a job ran twice"
    assert set(runs) <= set(jobs)

    for job_id, state in finals.items():
        check_final_state(job_id, state, answers.get(job_id), set(ran_on_killed), set(ran_on_survivor), killed_at_ms)

    statuses = Counter(state["status"] for state in finals.values())
    start_ms = {job_id: epoch_ms(state.get("startTimeUtc")) for job_id, state in finals.items()}
    end_ms = {job_id: epoch_ms(state["endTimeUtc"]) for job_id, state in finals.items()}
    survivor_at_kill = [j for j in ran_on_survivor if (start_ms[j] or 0) <= killed_at_ms < (end_ms[j] or 0)]
    assert statuses["Failed"] >= 1, "the killed worker ran no job when it was killed"
    assert survivor_at_kill, "the surviving worker ran no job when the other was killed"
    assert any((start_ms[j] or 0) > killed_at_ms for j in ran_on_survivor), "no job started after the kill"
    detected_after_ms = max(end_ms[j] or 0 for j, state in finals.items() if state["status"] == "Failed") - killed_at_ms
    assert detected_after_ms <= DETECTION_BOUND_MS, "the killed worker's jobs ended Failed too late"
    stopped_by_cancel = [j for j in answers if finals[j]["status"] == "Cancelled" and start_ms[j] is not None]
    assert stopped_by_cancel, "no running handler was stopped by a cancel from another process"

    survivors = [bridge_process, *replicas, launched[3]]
    outputs = await asyncio.gather(*(asyncio.to_thread(stop, process) for process in survivors))
    assert [process.process.returncode for process in survivors] == [0] * len(survivors), outputs
    print(
        f"processes started in {started_in:.1f}s; {JOB_COUNT} jobs created at {created_in:.1f}s; worker killed at "
        f"{killed_after:.1f}s, its jobs Failed {detected_after_ms} ms later; all terminal at {settled_after:.1f}s",
        f"final {dict(statuses)}; cancel answers {dict(Counter(answers.values()))}",
        f"{len(stopped_by_cancel)} running handlers stopped by a cancel; jobs started on the killed worker "
        f"{len(ran_on_killed)}, on the other {len(ran_on_survivor)}",
        sep="\n",
    )


def check_final_state(
    job_id: str,
    state: dict[str, Any],
    answer: str | None,
    ran_on_killed: set[str],
    ran_on_survivor: set[str],
    killed_at_ms: int,
) -> None:
    """The one terminal state a job may end in, from what was done to it and where it ran."""
    status = state["status"]
    start_ms, end_ms = epoch_ms(state.get("startTimeUtc")), epoch_ms(state["endTimeUtc"])
    assert end_ms is not None
    if answer in TERMINAL:
        assert status == answer, f"cancel answered {answer}, the job ended {state}"
    if status == "Cancelled":
        assert answer is not None, f"a job nobody cancelled ended Cancelled: {state}"
    if status == "Completed":
        assert answer in (None, "Completed"), f"a cancelled job ended Completed after the answer {answer}: {state}"
        assert job_id in ran_on_killed | ran_on_survivor, f"Completed without its handler having run: {state}"
        if job_id in ran_on_killed:
            assert end_ms <= killed_at_ms, f"Completed by the killed worker after it was killed: {state}"
    if status == "Failed":
        error = state["errorDetails"]
        assert (error["errorCode"], error["isPermanent"]) == ("JobExecutorLost", False), state
        assert job_id not in ran_on_survivor, f"the surviving worker's job ended Failed: {state}"
        assert start_ms is not None, state
        assert start_ms <= killed_at_ms <= end_ms, f"not running when its worker was killed: {state}"


REQUEST_ID_IN_LINE = re.compile(r"\brequest=([^\s\]]+)")


def served_requests(replica: Serve) -> set[str]:
    """The RequestIds of the GetJobInstance calls that `replica` answered, from its log."""
    return {
        match.group(1)
        for line in list(replica.output)
        if "/GetJobInstance OK" in line and (match := REQUEST_ID_IN_LINE.search(line))
    }


async def get_all_answered(bridge: Bridge, job: JobRef, count: int, answered: list[str] | None = None) -> set[str]:
    """`count` Gets, each with a new RequestId, every one answered 200; the RequestIds (also appended to
    `answered` as they come)."""
    answered = [] if answered is None else answered

    async def get() -> str:
        headers = job.headers()
        response = await bridge.get(job, headers=headers)
        assert response.status_code == 200, response.text
        answered.append(headers["RequestId"])
        return headers["RequestId"]

    return set(await bounded(get() for _ in range(count)))


@pytest.mark.parametrize(
    ("sig", "frozen"),
    [(signal.SIGTERM, False), (signal.SIGKILL, False), (signal.SIGTERM, True)],
    ids=["SIGTERM", "SIGKILL", "SIGTERM-with-calls-waiting"],
)
async def test_the_bridge_balances_over_replicas_and_retries_on_the_other_when_one_stops(
    postgres_url: str, processes: Processes, sig: signal.Signals, frozen: bool
) -> None:
    """Every call is answered while a replica stops and after. With `frozen`, the replica is stopped (SIGSTOP)
    while calls reach it, then terminated: it cancels the calls waiting for it, which the bridge retries."""
    replicas = await in_parallel(
        lambda: start_replica(processes, postgres_url), lambda: start_replica(processes, postgres_url)
    )
    bridge_process = start_bridge(processes, replicas)
    job = JobRef(item_type=ITEM_TYPE, job_type=WAITS)
    async with client_at(bridge_process.rest_url) as http:
        bridge = Bridge(http)
        created = await bridge.create(job, {"invokeType": "Manual", "creationPayload": {DELAY_FIELD: 1}})
        assert created.status_code == 202, created.text

        balanced = await get_all_answered(bridge, job, 20)

        def each_replica_served_some() -> bool:
            served = [served_requests(replica) & balanced for replica in replicas]
            return all(served) and set().union(*served) == balanced

        await wait_until(each_replica_served_some, what="both replicas answering the bridge's calls")

        stopping, remaining = replicas
        if frozen:
            stopping.process.send_signal(signal.SIGSTOP)
        answered: list[str] = []
        in_flight = asyncio.create_task(get_all_answered(bridge, job, 100, answered))
        await wait_until(lambda: len(answered) >= 5, what="Gets answered")
        stopping.process.send_signal(sig)
        if frozen:
            stopping.process.send_signal(signal.SIGCONT)
        await in_flight
        await asyncio.to_thread(stopping.process.wait, 30)
        assert stopping.process.returncode == (0 if sig == signal.SIGTERM else -signal.SIGKILL), stopping.text()
        after_stop = await get_all_answered(bridge, job, 50)

    await wait_until(lambda: after_stop <= served_requests(remaining), what="the remaining replica answering all")
