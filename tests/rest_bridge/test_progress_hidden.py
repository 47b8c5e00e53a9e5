"""A job's progress is ours, not Fabric's: while gRPC shows it, the REST state stays exactly as the contract says,
over both channels, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabric_jobs.v1 import job_service_pb2 as pb
from tests.harness import RunningServer, eventually
from tests.jobs import REPORTS_PROGRESS, REPORTS_PROGRESS_THREAD
from tests.rest_bridge.client import Bridge, JobRef


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "jobs.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.mark.parametrize("job_type", [REPORTS_PROGRESS, REPORTS_PROGRESS_THREAD])
async def test_the_rest_state_of_a_job_reporting_progress_is_the_contracts(
    bridge: Bridge, bridge_server: RunningServer, job_type: str
) -> None:
    job = JobRef(job_type=job_type)
    body = {"invokeType": "Manual", "creationPayload": {"reports": [[50, "halfway"]]}}
    assert (await bridge.create(job, body)).status_code == 202

    async def reported() -> pb.JobInstance | None:
        got = (await bridge_server.stub.GetJobInstance(pb.GetJobInstanceRequest(key=job.key))).job_instance
        return got if got.progress.message == "halfway" else None

    over_grpc = await eventually(reported, what="the progress over gRPC")
    state = await bridge.state(job)
    cancelled = await bridge.cancel(job)
    ended = await bridge.wait_for(job, "Cancelled")

    assert over_grpc.progress.percent == 50
    assert state == {"status": "InProgress", "startTimeUtc": state["startTimeUtc"]}
    assert set(cancelled.json()) <= {"status", "startTimeUtc", "endTimeUtc"}
    assert set(ended) == {"status", "startTimeUtc", "endTimeUtc"}
