"""The job lifecycle against a model: hypothesis draws interleavings of create (new, repeated, conflicting),
cancel, a handler told to complete or fail, and restarts, and runs them against a real JobService on a real
SQLite file (a restart stops the service and starts another on the file). After every step every job is read
back and checked against what the model allows.

Short in CI; FABRIC_JOBS_MODEL_STEPS=N runs until about N steps (the test prints how many ran). Seeded from the
test's `rng` (FABRIC_JOBS_TEST_SEED replays a run); a failure prints the steps that led to it.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import grpc
import hypothesis
import pytest
from google.protobuf import struct_pb2
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from fabric_jobs.client._loop import LoopThread
from fabric_jobs.server.app import ServiceSettings
from fabric_jobs.v1 import job_service_pb2 as pb
from tests.conftest import status_details
from tests.harness import RunningServer, eventually_blocking, start_running_server
from tests.server import steered_jobs as steered
from tests.server.steered_jobs import SteeredJobs

T = TypeVar("T")
STEPS = int(os.environ.get("FABRIC_JOBS_MODEL_STEPS") or 300)
STEPS_PER_RUN = 40
MAX_THREADS = 2
DEADLINE = 5.0
TERMINAL = frozenset({"Completed", "Failed", "Cancelled"})
LOST = "Failed:JobExecutorLost"
STOPPED = "Failed:JobInterrupted"
INVOKE_TYPES = (pb.JOB_INVOKE_TYPE_MANUAL, pb.JOB_INVOKE_TYPE_SCHEDULED)


@dataclass(frozen=True)
class State:
    status: str
    start_ms: int | None
    end_ms: int | None
    error_code: str
    is_permanent: bool

    @classmethod
    def of(cls, job: pb.JobInstance) -> State:
        start = job.start_time.ToMilliseconds() if job.HasField("start_time") else None
        end = job.end_time.ToMilliseconds() if job.HasField("end_time") else None
        status = pb.JobInstanceStatus.Name(job.status).removeprefix("JOB_INSTANCE_STATUS_").title().replace("_", "")
        details = job.error_details
        return cls(status, start, end, details.error_code, details.is_permanent)

    @property
    def outcome(self) -> str:
        return f"Failed:{self.error_code}" if self.status == "Failed" else self.status


@dataclass
class Job:
    key: pb.JobInstanceKey
    invoke_type: pb.JobInvokeType.ValueType
    payload: struct_pb2.Struct
    allowed: set[str] = field(default_factory=set)
    """The terminal outcomes that what was done to the job allows."""
    terminal: State | None = None

    @property
    def job_type(self) -> str:
        return self.key.job_type

    def create_request(
        self, invoke_type: pb.JobInvokeType.ValueType | None = None, payload: struct_pb2.Struct | None = None
    ) -> pb.CreateJobInstanceRequest:
        return pb.CreateJobInstanceRequest(
            key=self.key,
            invoke_type=self.invoke_type if invoke_type is None else invoke_type,
            creation_payload=self.payload if payload is None else payload,
        )


class Loop(LoopThread):
    """The plugin's event loop in a thread: the machine's rules are plain functions that run calls on it."""

    def call(self, call: Callable[[], Awaitable[T]], timeout: float = 60.0) -> T:
        """Make the call on the loop's thread (a grpc.aio call binds to the loop it is made on) and wait for it."""

        async def wrapped() -> T:
            return await call()

        return self.run(wrapped(), timeout)


def poll(condition: Callable[[], bool], what: Callable[[], str]) -> None:
    try:
        eventually_blocking(condition, within=DEADLINE, every=0.005)
    except AssertionError:
        raise AssertionError(f"not within {DEADLINE}s: {what()}") from None


class LifecycleMachine(RuleBasedStateMachine):
    checks = 0
    runs = 0

    def __init__(self, work: Path) -> None:
        super().__init__()
        LifecycleMachine.runs += 1
        self.loop = Loop("model-loop")
        self.handlers = SteeredJobs()
        database = "sqlite:///" + str(work / f"model-{uuid.uuid4().hex}.db")
        self.settings = ServiceSettings(
            database=database,
            cancel_wait=0.05,
            cancel_grace=0.2,
            shutdown_grace=0.05,
            lease_seconds=1.0,
            max_threads=MAX_THREADS,
        )
        self.server = self._start()
        self.jobs: list[Job] = []

    def _start(self) -> RunningServer:
        return self.loop.call(lambda: start_running_server(self.settings, self.handlers.registry))

    def get(self, job: Job) -> State:
        reply = self.loop.call(lambda: self.server.stub.GetJobInstance(pb.GetJobInstanceRequest(key=job.key)))
        return State.of(reply.job_instance)

    def settle(self) -> None:
        """Wait until every job that can run runs: each unfinished job is InProgress with its handler called, or
        NotStarted for want of a handler thread."""

        def settled() -> bool:
            running = self.handlers.running()
            threads = {job.key.job_instance_id for job in self.jobs if job.job_type.endswith("Thread")}
            threads_busy = len(running & threads) >= MAX_THREADS
            for job in self.jobs:
                if job.terminal is not None:
                    continue
                state = self.get(job)
                if state.status == "InProgress" and job.key.job_instance_id not in running:
                    return False
                if state.status == "NotStarted" and not (job.key.job_instance_id in threads and threads_busy):
                    return False
            return True

        poll(settled, lambda: f"jobs never settled: {[(job.key.job_instance_id, self.get(job)) for job in self.jobs]}")

    def _running(self) -> list[Job]:
        running = self.handlers.running()
        return [job for job in self.jobs if job.key.job_instance_id in running and job.terminal is None]

    @initialize(job_types=st.lists(st.sampled_from(steered.JOB_TYPES), min_size=1, max_size=4))
    def some_jobs(self, job_types: list[str]) -> None:
        for job_type in job_types:
            self.create(job_type, pb.JOB_INVOKE_TYPE_MANUAL, 0)

    @rule(job_type=st.sampled_from(steered.JOB_TYPES), invoke=st.sampled_from(INVOKE_TYPES), size=st.integers(0, 3))
    def create(self, job_type: str, invoke: pb.JobInvokeType.ValueType, size: int) -> None:
        payload = struct_pb2.Struct()
        payload.update({"size": size})
        ids = [str(uuid.uuid4()) for _ in range(4)]
        key = pb.JobInstanceKey(
            tenant_id=ids[0],
            workspace_id=ids[1],
            item_type=steered.ITEM_TYPE,
            item_id=ids[2],
            job_type=job_type,
            job_instance_id=ids[3],
        )
        job = Job(key, invoke, payload)
        self.loop.call(lambda: self.server.stub.CreateJobInstance(job.create_request()))
        self.jobs.append(job)
        self.settle()

    @precondition(lambda self: bool(self.jobs))
    @rule(data=st.data())
    def repeat_create(self, data: st.DataObject) -> None:
        job = data.draw(st.sampled_from(self.jobs), label="job")
        self.loop.call(lambda: self.server.stub.CreateJobInstance(job.create_request()))

    @precondition(lambda self: bool(self.jobs))
    @rule(data=st.data(), change=st.sampled_from(["invoke_type", "payload"]))
    def conflicting_create(self, data: st.DataObject, change: str) -> None:
        job = data.draw(st.sampled_from(self.jobs), label="job")
        if change == "invoke_type":
            other = next(invoke for invoke in INVOKE_TYPES if invoke != job.invoke_type)
            request = job.create_request(invoke_type=other)
        else:
            payload = struct_pb2.Struct()
            payload.update({"size": 99})
            request = job.create_request(payload=payload)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            self.loop.call(lambda: self.server.stub.CreateJobInstance(request))
        assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert status_details(raised.value).reason == "JobInstanceConflict"

    @precondition(lambda self: any(job.terminal is None for job in self.jobs))
    @rule(data=st.data(), what=st.sampled_from([steered.COMPLETE, steered.FAIL]))
    def handler_ends(self, data: st.DataObject, what: str) -> None:
        running = self._running()
        if not running:
            return
        job = data.draw(st.sampled_from(running), label="job")
        job.allowed.add("Completed" if what == steered.COMPLETE else f"Failed:{steered.FAILED_CODE}")
        self.handlers.command(job.key.job_instance_id, what)
        poll(lambda: self.get(job).status in TERMINAL, lambda: f"{job.key.job_instance_id} told to {what}")
        self.settle()

    @precondition(lambda self: bool(self.jobs))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        job = data.draw(st.sampled_from(self.jobs), label="job")
        if job.terminal is None:
            job.allowed.add("Cancelled")
        request = pb.CancelJobInstanceRequest(key=job.key)
        answer = State.of(self.loop.call(lambda: self.server.stub.CancelJobInstance(request)).job_instance)
        if job.terminal is not None:
            assert answer == job.terminal, "a cancel of a terminal job changed it"
            return
        poll(lambda: self.get(job).status in TERMINAL, lambda: f"{job.key.job_instance_id} cancelled")
        self.settle()

    @rule()
    def cancel_unknown(self) -> None:
        key = pb.JobInstanceKey(
            tenant_id=str(uuid.uuid4()),
            workspace_id=str(uuid.uuid4()),
            item_type=steered.ITEM_TYPE,
            item_id=str(uuid.uuid4()),
            job_type=steered.HONOURS,
            job_instance_id=str(uuid.uuid4()),
        )
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            self.loop.call(lambda: self.server.stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=key)))
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND

    @rule()
    def restart(self) -> None:
        interrupted = self._running()
        for job in interrupted:
            job.allowed |= self._restart_outcomes(job)
        self.loop.call(lambda: self.server.stop())
        poll(lambda: not self.handlers.running(), lambda: f"handlers still running: {self.handlers.running()}")
        self.server = self._start()
        for job in interrupted:
            state = self.get(job)
            assert state.outcome in self._restart_outcomes(job), f"interrupted by the restart, yet {state}"
            assert not state.is_permanent, f"interrupted by the restart, yet permanent: {state}"
        self.settle()

    @staticmethod
    def _restart_outcomes(job: Job) -> set[str]:
        """A handler told of the shutdown stops (JobInterrupted) unless the short grace ends first (JobExecutorLost);
        one that ignores its token always outlives the grace."""
        return {STOPPED, LOST} if job.job_type in (steered.HONOURS, steered.HONOURS_THREAD) else {LOST}

    @invariant()
    def every_job_as_the_model_allows(self) -> None:
        LifecycleMachine.checks += 1
        for job in self.jobs:
            job_id = job.key.job_instance_id
            state = self.get(job)
            calls = self.handlers.calls[job_id]
            assert calls <= 1, f"{job_id}: handler called {calls} times"
            if state.status == "NotStarted":
                assert state.start_ms is None, state
                assert state.end_ms is None, state
                assert calls == 0, f"{job_id}: NotStarted, yet its handler was called"
            elif state.status == "InProgress":
                assert state.start_ms is not None, state
                assert state.end_ms is None, state
            else:
                assert state.end_ms is not None, state
                assert state.start_ms is None or state.start_ms <= state.end_ms, f"{job_id}: starts after it ends"
            if state.status == "Cancelled" and state.start_ms is None:
                assert calls == 0, f"{job_id}: cancelled while NotStarted, yet its handler ran"
            if job.terminal is not None:
                assert state == job.terminal, f"{job_id}: terminal state changed from {job.terminal} to {state}"
            elif state.status in TERMINAL:
                assert state.outcome in job.allowed, f"{job_id}: ended {state.outcome}, allowed {job.allowed}"
                job.terminal = state

    def teardown(self) -> None:
        try:
            for job in self.jobs:
                self.handlers.command(job.key.job_instance_id, steered.COMPLETE)
            self.loop.call(lambda: self.server.stop())
        finally:
            self.loop.close()


@pytest.mark.slow
@pytest.mark.timeout(0 if "FABRIC_JOBS_MODEL_STEPS" in os.environ else 120)
def test_the_lifecycle_follows_the_model(rng: random.Random, tmp_path: Path) -> None:
    def machine() -> LifecycleMachine:
        return LifecycleMachine(tmp_path)

    LifecycleMachine.checks = LifecycleMachine.runs = 0
    run_state_machine_as_test(
        hypothesis.seed(rng.randrange(2**32))(machine),  # type: ignore[arg-type]  # any factory of machines will do
        settings=settings(
            max_examples=max(1, STEPS // (STEPS_PER_RUN // 2)),
            stateful_step_count=STEPS_PER_RUN,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    steps = LifecycleMachine.checks - LifecycleMachine.runs
    print(f"{steps} steps in {LifecycleMachine.runs} runs, every job checked against the model after each")
    assert steps > 0
