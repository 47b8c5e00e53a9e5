"""Shared fixtures over the harness (tests/harness.py): a real JobService on a free port over a real SQLite file,
and small helpers."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc
from tests.harness import POLL_INTERVAL as POLL_INTERVAL
from tests.harness import RunningServer as RunningServer
from tests.harness import ServerFactory as ServerFactory
from tests.harness import eventually, server_factory
from tests.harness import start_running_server as start_running_server
from tests.jobs import TestJobs

pytest_plugins = ("tests.postgres", "pytester")

SEED_VARIABLE = "FABRIC_JOBS_TEST_SEED"


@pytest.fixture
def rng() -> random.Random:
    """The source of a test's random choices, seeded from FABRIC_JOBS_TEST_SEED or afresh.

    The seed is printed, so pytest shows it with a failure and the same choices can be replayed.
    """
    seed = int(os.environ.get(SEED_VARIABLE) or random.SystemRandom().randrange(2**32))
    print(f"random choices seeded: {SEED_VARIABLE}={seed}")
    return random.Random(seed)


@pytest.fixture
def database(tmp_path: Path) -> str:
    return "sqlite:///" + str(tmp_path / "jobs.db")


@pytest.fixture
async def start_server(database: str) -> AsyncIterator[ServerFactory]:
    """Start servers on `database` (tests may start several in turn); every one is stopped at the end."""
    async with server_factory(database) as start:
        yield start


def new_key(item_type: str, job_type: str, *, tenant_id: str | None = None, **fields: str) -> pb.JobInstanceKey:
    """A JobInstanceKey with random UUIDs (any of them may be given)."""
    return pb.JobInstanceKey(
        tenant_id=tenant_id or str(uuid.uuid4()),
        workspace_id=fields.get("workspace_id", str(uuid.uuid4())),
        item_type=item_type,
        item_id=fields.get("item_id", str(uuid.uuid4())),
        job_type=job_type,
        job_instance_id=fields.get("job_instance_id", str(uuid.uuid4())),
    )


async def wait_for_status(
    stub: pb_grpc.JobServiceAsyncStub,
    key: pb.JobInstanceKey,
    status: pb.JobInstanceStatus.ValueType,
    within: float = 5.0,
) -> pb.JobInstance:
    """Poll Get until the instance has `status`; fail with the last state seen after `within` seconds."""

    async def reached() -> pb.JobInstance | None:
        job = (await stub.GetJobInstance(pb.GetJobInstanceRequest(key=key))).job_instance
        return job if job.status == status else None

    return await eventually(reached, within=within, what=f"the job reaching {pb.JobInstanceStatus.Name(status)}")


async def wait_until(condition: Callable[[], bool], within: float = 5.0, what: str = "condition") -> None:
    """Poll a plain condition with a bounded loop."""
    await eventually(condition, within=within, what=what)


async def rpc_error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    """Await a call that must fail; return its error."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


@dataclass(frozen=True)
class StatusDetails:
    """The google.rpc.Status details of a failed call, decoded."""

    reason: str
    domain: str
    error: pb.ErrorDetails
    field_violations: dict[str, str]


def status_details(err: grpc.aio.AioRpcError) -> StatusDetails:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]  # an AioRpcError is a grpc.Call in all but name
    assert status is not None, f"no google.rpc.Status in {err!r}"
    info = error_details_pb2.ErrorInfo()
    details = pb.ErrorDetails()
    bad_request = error_details_pb2.BadRequest()
    found = set()
    for packed in status.details:
        for message in (info, details, bad_request):
            if packed.Is(message.DESCRIPTOR):
                packed.Unpack(message)
                found.add(message.DESCRIPTOR.full_name)
    assert {"google.rpc.ErrorInfo", "fabric_jobs.v1.ErrorDetails"} <= found, found
    violations = {v.field: v.description for v in bad_request.field_violations}
    return StatusDetails(info.reason, info.domain, details, violations)


@pytest.fixture
def jobs(rng: random.Random) -> Iterator[TestJobs]:
    """What the test jobs (tests/jobs.py) do in this process during the test: records emptied, the gated
    handlers' gate opened at the end, the racing ones drawing from the test's seeded `rng`."""
    with TestJobs(rng) as jobs:
        yield jobs
