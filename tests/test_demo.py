"""The demo job type as Fabric and an internal service see it, through the test plugin's in-process stack."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from fabric_jobs import demo
from fabric_jobs.client import SyncJobsClient
from fabric_jobs.client.results import time_from_pb
from fabric_jobs.testing import FabricJobsService, JobRef
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc
from tests.conftest import status_details

pytestmark = pytest.mark.fabric_jobs(registry="fabric_jobs.demo:registry", cancel_wait=0.2, cancel_grace=0.5)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"durationSeconds": -1}, "durationSeconds"),
        ({"durationSeconds": "soon"}, "durationSeconds"),
        ({"durationSeconds": 1e9}, "durationSeconds"),
        ({"durationSeconds": True}, "durationSeconds"),
        ({"outcome": "Maybe"}, "outcome"),
        ({"ignoreCancellation": "yes"}, "ignoreCancellation"),
        ({"progressSeconds": -1}, "progressSeconds"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_an_invalid_payload_is_rejected_naming_the_field(
    fabric_jobs_service: FabricJobsService, fabric_jobs_stub: pb_grpc.JobServiceStub, fields: dict[str, Any], field: str
) -> None:
    job = JobRef(demo.ITEM_TYPE, demo.JOB_TYPE)
    response = fabric_jobs_service.post_create(job, fields)
    assert response.status_code == 400
    assert response.json()["errorCode"] == "InvalidRequest"
    assert response.json()["messageParameters"] == [f"creationPayload.{field}"]

    payload = struct_pb2.Struct()
    payload.update(fields)
    request = pb.CreateJobInstanceRequest(key=job.key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL, creation_payload=payload)
    with pytest.raises(grpc.RpcError) as raised:
        fabric_jobs_stub.CreateJobInstance(request)
    assert isinstance(raised.value, grpc.aio.AioRpcError)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(status_details(raised.value).field_violations) == {f"creation_payload.{field}"}
    assert fabric_jobs_service.rest.get(job.path, headers=job.headers()).status_code == 404


def test_a_valid_payload_runs_to_its_outcome(fabric_jobs_service: FabricJobsService) -> None:
    completed = fabric_jobs_service.create_and_wait(demo.ITEM_TYPE, demo.JOB_TYPE, {"durationSeconds": 0})
    assert "errorDetails" not in completed
    failed = fabric_jobs_service.create_and_wait(
        demo.ITEM_TYPE, demo.JOB_TYPE, {"durationSeconds": 0, "outcome": "Failed"}, status="Failed"
    )
    assert failed["errorDetails"]["errorCode"] == "ForecastFailed"
    assert failed["errorDetails"]["isPermanent"] is True


def test_a_cancelled_forecast_stops_at_once(fabric_jobs_service: FabricJobsService) -> None:
    job = fabric_jobs_service.create(demo.ITEM_TYPE, demo.JOB_TYPE, {"durationSeconds": 600})
    fabric_jobs_service.wait_for(job, "InProgress")
    assert fabric_jobs_service.cancel(job)["status"] == "Cancelled"


def test_a_forecast_ignoring_its_cancel_is_stopped_after_the_grace(fabric_jobs_service: FabricJobsService) -> None:
    job = fabric_jobs_service.create(
        demo.ITEM_TYPE, demo.JOB_TYPE, {"durationSeconds": 600, "ignoreCancellation": True}
    )
    fabric_jobs_service.wait_for(job, "InProgress")
    assert fabric_jobs_service.cancel(job)["status"] == "InProgress"
    state = fabric_jobs_service.wait_for(job, "Cancelled", timeout=5.0)
    assert "endTimeUtc" in state


def test_a_forecast_reports_its_progress_unless_told_not_to(
    fabric_jobs_service: FabricJobsService, fabric_jobs_stub: pb_grpc.JobServiceStub, fabric_jobs_client: SyncJobsClient
) -> None:
    reporting = fabric_jobs_service.create(
        demo.ITEM_TYPE, demo.JOB_TYPE, {"durationSeconds": 0.3, "progressSeconds": 0.1}
    )
    silent = fabric_jobs_service.create(demo.ITEM_TYPE, demo.JOB_TYPE, {"durationSeconds": 0.3, "progressSeconds": 0})
    for job in (reporting, silent):
        state = fabric_jobs_service.wait_for(job, "Completed")
        assert set(state) == {"status", "startTimeUtc", "endTimeUtc"}  # Fabric's state has no progress

    reported = fabric_jobs_stub.GetJobInstance(pb.GetJobInstanceRequest(key=reporting.key)).job_instance
    unreported = fabric_jobs_stub.GetJobInstance(pb.GetJobInstanceRequest(key=silent.key)).job_instance
    assert (reported.progress.percent, reported.progress.message) == (100, "forecast ready")
    assert not unreported.HasField("progress")
    progress = fabric_jobs_client.get(reporting.job_key).progress
    assert progress is not None
    assert (progress.percent, progress.message) == (100.0, "forecast ready")
    assert progress.update_time == time_from_pb(reported.progress.update_time)
    assert fabric_jobs_client.get(silent.job_key).progress is None
