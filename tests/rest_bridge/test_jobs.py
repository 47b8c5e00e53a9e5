"""DESIGN.md's job instance semantics, over REST, against the real JobService."""

from __future__ import annotations

import pytest

from tests.jobs import (
    COMPLETES,
    COOPERATES,
    CRASHES,
    FAILS,
    HOLDS_THREAD,
    IGNORES_CANCEL,
    SYNC_COMPLETES,
    runs,
)
from tests.rest_bridge.client import TERMINAL, Bridge, JobRef


async def test_create_answers_202_with_an_empty_body_and_the_job_runs(bridge: Bridge) -> None:
    job = JobRef(job_type=COMPLETES)
    response = await bridge.create(job, {"invokeType": "Manual", "creationPayload": {"n": 1}})
    assert response.status_code == 202
    assert response.content == b""
    state = await bridge.wait_for(job, "Completed")
    assert set(state) == {"status", "startTimeUtc", "endTimeUtc"}
    assert state["startTimeUtc"] <= state["endTimeUtc"]


async def test_repeated_identical_create_is_202_and_runs_once(bridge: Bridge) -> None:
    job = JobRef(job_type=COMPLETES)
    body = {"invokeType": "Scheduled", "creationPayload": {"a": [1, 2]}}
    assert (await bridge.create(job, body)).status_code == 202
    await bridge.wait_for(job, "Completed")
    assert (await bridge.create(job, body)).status_code == 202
    assert (await bridge.state(job))["status"] == "Completed"
    assert runs[job.job_instance_id] == 1


async def test_create_same_key_different_request_is_409(bridge: Bridge) -> None:
    job = JobRef(job_type=COOPERATES)
    assert (await bridge.create(job, {"invokeType": "Manual"})).status_code == 202
    response = await bridge.create(job, {"invokeType": "Manual", "creationPayload": {"other": True}})
    assert response.status_code == 409
    assert response.json()["errorCode"] == "JobInstanceConflict"
    await bridge.cancel(job)


async def test_unregistered_job_type_is_4xx_and_nothing_is_stored(bridge: Bridge) -> None:
    job = JobRef(job_type="notRegistered")
    response = await bridge.create(job)
    assert 400 <= response.status_code < 500
    assert response.json()["errorCode"] == "UnsupportedJobType"
    missing = await bridge.get(job)
    assert missing.status_code == 404
    assert missing.json()["errorCode"] == "JobInstanceNotFound"


@pytest.mark.parametrize("call", ["get", "cancel"])
async def test_unknown_key_is_404_job_instance_not_found(bridge: Bridge, call: str) -> None:
    response = await getattr(bridge, call)(JobRef())
    assert response.status_code == 404
    body = response.json()
    assert body["errorCode"] == "JobInstanceNotFound"
    assert body["source"] == "User"


async def test_cancel_in_progress_cooperative_handler_ends_cancelled(bridge: Bridge) -> None:
    job = JobRef(job_type=COOPERATES)
    await bridge.create(job)
    started = await bridge.wait_for(job, "InProgress")
    assert "startTimeUtc" in started
    assert "endTimeUtc" not in started
    response = await bridge.cancel(job)
    assert response.status_code == 200
    state = response.json()
    assert state["status"] == "Cancelled"
    assert state["startTimeUtc"] == started["startTimeUtc"]
    assert "endTimeUtc" in state


async def test_cancel_not_started_ends_cancelled_and_the_handler_never_starts(bridge: Bridge) -> None:
    blocker = JobRef(job_type=HOLDS_THREAD)
    await bridge.create(blocker)
    await bridge.wait_for(blocker, "InProgress")
    job = JobRef(job_type=SYNC_COMPLETES)
    await bridge.create(job)
    assert await bridge.state(job) == {"status": "NotStarted"}
    response = await bridge.cancel(job)
    assert response.status_code == 200
    state = response.json()
    assert state["status"] == "Cancelled"
    assert "endTimeUtc" in state
    assert "startTimeUtc" not in state
    await bridge.cancel(blocker)
    await bridge.wait_for(blocker, *TERMINAL)
    assert await bridge.state(job) == state
    assert runs[job.job_instance_id] == 0


async def test_cancel_ignored_stays_in_progress_then_is_forced_to_cancelled(bridge: Bridge) -> None:
    job = JobRef(job_type=IGNORES_CANCEL)
    await bridge.create(job)
    await bridge.wait_for(job, "InProgress")
    response = await bridge.cancel(job)
    assert response.status_code == 200
    assert response.json()["status"] == "InProgress"
    final = await bridge.wait_for(job, *TERMINAL)
    assert final["status"] == "Cancelled"
    assert "endTimeUtc" in final


async def test_cancel_of_a_completed_job_leaves_it_completed_and_repeats_the_same_answer(bridge: Bridge) -> None:
    job = JobRef(job_type=COMPLETES)
    await bridge.create(job)
    completed = await bridge.wait_for(job, "Completed")
    first = await bridge.cancel(job)
    second = await bridge.cancel(job)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json() == completed
    assert await bridge.state(job) == completed


async def test_repeated_cancel_gives_the_same_answer(bridge: Bridge) -> None:
    job = JobRef(job_type=COOPERATES)
    await bridge.create(job)
    await bridge.wait_for(job, "InProgress")
    await bridge.cancel(job)
    cancelled = await bridge.wait_for(job, "Cancelled")
    for _ in range(2):
        again = await bridge.cancel(job)
        assert again.status_code == 200
        assert again.json() == cancelled


async def test_a_failing_handler_ends_failed_with_error_details(bridge: Bridge) -> None:
    job = JobRef(job_type=FAILS)
    await bridge.create(job)
    state = await bridge.wait_for(job, "Failed")
    details = state["errorDetails"]
    assert details["errorCode"] == "ForecastFailed"
    assert details["message"] == "the forecast could not be computed"
    assert details["messageParameters"] == ["x"]
    assert details["source"] in {"User", "System", "External"}
    assert "endTimeUtc" in state


async def test_a_crashing_handler_ends_failed_with_job_execution_failed(bridge: Bridge) -> None:
    job = JobRef(job_type=CRASHES)
    await bridge.create(job)
    state = await bridge.wait_for(job, "Failed")
    assert state["errorDetails"]["errorCode"] == "JobExecutionFailed"


@pytest.mark.parametrize(
    ("invoke_type", "same_as"),
    [(0, "UnknownFutureValue"), (1, "Scheduled"), (2, "Manual")],
)
async def test_invoke_type_integers_mean_the_documented_strings(bridge: Bridge, invoke_type: int, same_as: str) -> None:
    job = JobRef(job_type=COMPLETES)
    assert (await bridge.create(job, {"invokeType": invoke_type})).status_code == 202
    assert (await bridge.create(job, {"invokeType": same_as})).status_code == 202
    other = next(name for name in ("UnknownFutureValue", "Scheduled", "Manual") if name != same_as)
    assert (await bridge.create(job, {"invokeType": other})).status_code == 409


async def test_null_creation_payload_is_the_same_as_none(bridge: Bridge) -> None:
    job = JobRef(job_type=COMPLETES)
    assert (await bridge.create(job, {"invokeType": "Manual", "creationPayload": None})).status_code == 202
    assert (await bridge.create(job, {"invokeType": "Manual"})).status_code == 202


@pytest.mark.parametrize("field", ["tenant_id", "workspace_id", "item_id", "item_type", "job_type"])
async def test_a_key_differing_in_one_field_is_another_job(bridge: Bridge, field: str) -> None:
    job = JobRef(job_type=COOPERATES)
    await bridge.create(job)
    await bridge.wait_for(job, "InProgress")
    replacement = {"item_type": "Other.Item", "job_type": "otherJob"}.get(field) or JobRef().tenant_id
    stranger = job.but(**{field: replacement})
    for response in (await bridge.get(stranger), await bridge.cancel(stranger)):
        assert response.status_code == 404
        assert response.json()["errorCode"] == "JobInstanceNotFound"
    assert (await bridge.state(job))["status"] == "InProgress"
    await bridge.cancel(job)
