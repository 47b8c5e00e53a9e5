"""The forecast and export job types, through the real JobService and REST bridge (fabric-jobs' plugin)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from fabric_jobs import TokenUnavailable
from fabric_jobs.testing import FabricJobsService, JobRef, UserTokens

from forecast_workload.jobs import EXPORT, FORECAST, ITEM_TYPE, LIST_FILES, ONELAKE_SCOPE
from onelake import OneLake, path

HISTORY = [100, 110, 120, 130]


def forecast(service: FabricJobsService, **payload: Any) -> JobRef:
    job = service.create(ITEM_TYPE, FORECAST, {"history": HISTORY, "horizon": 3, **payload})
    service.wait_for(job, "Completed")
    return job


@pytest.mark.parametrize("horizon", [3, 3.0])
def test_a_forecast_extends_the_trend(fabric_jobs_service: FabricJobsService, output_dir: Path, horizon: float) -> None:
    job = fabric_jobs_service.create(ITEM_TYPE, FORECAST, {"history": HISTORY, "horizon": horizon})
    state = fabric_jobs_service.wait_for(job, "Completed")
    assert set(state) == {"status", "startTimeUtc", "endTimeUtc"}
    written = json.loads((output_dir / f"{job.job_instance_id}.json").read_text())
    assert written["forecast"] == pytest.approx([140, 150, 160])


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"horizon": 3}, "history"),
        ({"history": [1], "horizon": 3}, "history"),
        ({"history": [1, "2"], "horizon": 3}, "history"),
        ({"history": HISTORY}, "horizon"),
        ({"history": HISTORY, "horizon": 2.5}, "horizon"),
        ({"history": HISTORY, "horizon": 366}, "horizon"),
        ({"history": HISTORY, "horizon": True}, "horizon"),
        ({"history": HISTORY, "horizon": 3, "stepSeconds": -1}, "stepSeconds"),
    ],
)
def test_a_bad_forecast_payload_is_400_naming_the_field(
    fabric_jobs_service: FabricJobsService, payload: dict[str, Any], field: str
) -> None:
    job = JobRef(ITEM_TYPE, FORECAST)
    response = fabric_jobs_service.post_create(job, payload)
    assert response.status_code == 400
    error = response.json()
    assert error["errorCode"] == "InvalidRequest"
    assert error["messageParameters"] == [f"creationPayload.{field}"]
    assert fabric_jobs_service.rest.get(job.path, headers=job.headers()).status_code == 404


def test_a_declining_history_fails_with_its_own_error_code(fabric_jobs_service: FabricJobsService) -> None:
    state = fabric_jobs_service.create_and_wait(
        ITEM_TYPE, FORECAST, {"history": [30, 20, 10], "horizon": 5}, status="Failed"
    )
    assert state["errorDetails"] == {
        "errorCode": "NegativeForecast",
        "message": "The forecast falls below zero at step 2: the sales history declines too fast.",
        "messageParameters": ["2"],
        "source": "User",
        "isPermanent": True,
    }


def test_a_cancelled_forecast_stops_and_writes_nothing(
    fabric_jobs_service: FabricJobsService, output_dir: Path
) -> None:
    job = fabric_jobs_service.create(ITEM_TYPE, FORECAST, {"history": HISTORY, "horizon": 30, "stepSeconds": 60})
    started = fabric_jobs_service.wait_for(job, "InProgress")
    state = fabric_jobs_service.cancel_and_wait(job)
    assert state["startTimeUtc"] == started["startTimeUtc"]
    assert not (output_dir / f"{job.job_instance_id}.json").exists()


def test_an_export_writes_the_forecast_as_csv(fabric_jobs_service: FabricJobsService, output_dir: Path) -> None:
    source = forecast(fabric_jobs_service)
    job = fabric_jobs_service.create(ITEM_TYPE, EXPORT, {"forecastJobInstanceId": source.job_instance_id})
    fabric_jobs_service.wait_for(job, "Completed")
    with (output_dir / f"{job.job_instance_id}.csv").open(newline="") as file:
        assert list(csv.reader(file)) == [["step", "sales"], ["1", "140.00"], ["2", "150.00"], ["3", "160.00"]]


def test_an_export_of_an_unknown_forecast_fails(fabric_jobs_service: FabricJobsService) -> None:
    missing = JobRef(ITEM_TYPE, FORECAST).job_instance_id
    state = fabric_jobs_service.create_and_wait(ITEM_TYPE, EXPORT, {"forecastJobInstanceId": missing}, status="Failed")
    assert state["errorDetails"]["errorCode"] == "ForecastNotFound"
    assert state["errorDetails"]["messageParameters"] == [missing]


def test_a_bad_export_payload_is_400_naming_the_field(fabric_jobs_service: FabricJobsService) -> None:
    response = fabric_jobs_service.post_create(JobRef(ITEM_TYPE, EXPORT), {"forecastJobInstanceId": "../../etc"})
    assert response.status_code == 400
    assert response.json()["messageParameters"] == ["creationPayload.forecastJobInstanceId"]


def test_a_cancelled_export_stops_and_removes_its_partial_file(
    fabric_jobs_service: FabricJobsService, output_dir: Path
) -> None:
    source = forecast(fabric_jobs_service)
    payload = {"forecastJobInstanceId": source.job_instance_id, "pauseSeconds": 60}
    job = fabric_jobs_service.create(ITEM_TYPE, EXPORT, payload)
    fabric_jobs_service.wait_for(job, "InProgress")
    fabric_jobs_service.cancel_and_wait(job)
    assert not (output_dir / f"{job.job_instance_id}.csv").exists()


def test_an_unknown_job_type_is_refused(fabric_jobs_service: FabricJobsService) -> None:
    response = fabric_jobs_service.post_create(JobRef(ITEM_TYPE, f"{ITEM_TYPE}.Train"))
    assert response.status_code == 400
    assert response.json()["errorCode"] == "UnsupportedJobType"


def test_the_file_listing_reads_onelake_as_the_user(
    fabric_jobs_service: FabricJobsService, fabric_jobs_user_tokens: UserTokens, onelake: OneLake, output_dir: Path
) -> None:
    job = JobRef(ITEM_TYPE, LIST_FILES)
    folder = f"{job.item_id}/Files"
    onelake.folders[(job.workspace_id, folder)] = [
        path(f"{folder}/sales", directory=True),
        path(f"{folder}/sales/2026.csv", size=1234),
    ]

    assert fabric_jobs_service.post_create(job).status_code == 202
    fabric_jobs_service.wait_for(job, "Completed")

    listing = json.loads((output_dir / f"{job.job_instance_id}.files.json").read_text())
    assert listing["files"] == [
        {"name": f"{folder}/sales", "isDirectory": True, "size": 0},
        {"name": f"{folder}/sales/2026.csv", "isDirectory": False, "size": 1234},
    ]
    assert fabric_jobs_user_tokens.requested == [(ONELAKE_SCOPE,)]
    (request,) = onelake.requests
    assert request["authorization"] == f"Bearer {fabric_jobs_user_tokens.token_for(ONELAKE_SCOPE)}"
    assert request["path"] == f"/{job.workspace_id}"
    assert (request["query"]["directory"], request["query"]["recursive"]) == (folder, "true")


def test_without_a_token_for_the_user_the_listing_fails_as_entra_said(
    fabric_jobs_service: FabricJobsService, fabric_jobs_user_tokens: UserTokens, onelake: OneLake
) -> None:
    fabric_jobs_user_tokens.fail_with(
        TokenUnavailable("invalid_grant", "AADSTS65001: consent missing", is_permanent=True, correlation_id="c-7")
    )

    state = fabric_jobs_service.create_and_wait(ITEM_TYPE, LIST_FILES, status="Failed")

    error = state["errorDetails"]
    assert (error["errorCode"], error["isPermanent"]) == ("UserTokenUnavailable", True)
    assert error["moreDetails"][0]["additionalParameters"] == [{"name": "correlationId", "value": "c-7"}]
    assert onelake.requests == []


def test_a_folder_onelake_does_not_have_fails_the_job_permanently(fabric_jobs_service: FabricJobsService) -> None:
    state = fabric_jobs_service.create_and_wait(ITEM_TYPE, LIST_FILES, status="Failed")

    error = state["errorDetails"]
    assert (error["errorCode"], error["source"], error["isPermanent"]) == ("OneLakeRefused", "External", True)
