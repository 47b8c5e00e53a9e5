"""The creation payload from Fabric's JSON to the handler, over both bridge channels: exactly as sent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fabric_jobs.rest_bridge.app import create_app
from fabric_jobs.rest_bridge.settings import BridgeSettings
from fabric_jobs.server.settings import ServiceSettings
from tests import jobs as test_jobs
from tests.harness import start_running_server
from tests.rest_bridge.client import Bridge, JobRef, client_for

JSON = {"Content-Type": "application/json"}
FABRIC_PAYLOAD = '{"rows": 5, "big": 12345678901234567890, "ratio": 0.5, "name": "é"}'


def typed(value: Any) -> Any:
    """The value with the type of every number, key order included, so that 5 and 5.0 differ."""
    if isinstance(value, dict):
        return [(key, typed(child)) for key, child in value.items()]
    if isinstance(value, list):
        return [typed(child) for child in value]
    return (type(value).__name__, value)


async def create_raw(bridge: Bridge, job: JobRef, payload_text: str) -> int:
    content = f'{{"invokeType": "Manual", "creationPayload": {payload_text}}}'.encode()
    response = await bridge.create(job, content=content, headers={**job.headers(), **JSON})
    return response.status_code


@pytest.mark.parametrize(
    "payload_text",
    [
        FABRIC_PAYLOAD,
        '{"z": {"nested": [1, 2.0, -0.0, 1e300, "\\u00e9\\ud83d\\ude00", null, true]}, "a": -98765432109876543210}',
        "{}",
    ],
    ids=["fabric-example", "nested-and-escaped", "empty"],
)
async def test_the_payload_reaches_the_handler_as_sent(bridge: Bridge, payload_text: str) -> None:
    job = JobRef(job_type=test_jobs.RECORDS_PAYLOAD)

    assert await create_raw(bridge, job, payload_text) == 202
    await bridge.wait_for(job, "Completed")

    received = test_jobs.payloads[job.job_instance_id]
    assert typed(received) == typed(json.loads(payload_text))


async def test_the_fabric_example_keeps_integers_floats_order_and_text(bridge: Bridge) -> None:
    job = JobRef(job_type=test_jobs.RECORDS_PAYLOAD)
    assert await create_raw(bridge, job, FABRIC_PAYLOAD) == 202
    await bridge.wait_for(job, "Completed")

    received = test_jobs.payloads[job.job_instance_id]
    assert typed(received) == [
        ("rows", ("int", 5)),
        ("big", ("int", 12345678901234567890)),
        ("ratio", ("float", 0.5)),
        ("name", ("str", "\u00e9")),
    ]


@pytest.mark.parametrize(
    "again",
    [
        '{"name":"é","ratio":0.5,"big":12345678901234567890,"rows":5}',
        '{ "rows" : 5.0 , "big" : 12345678901234567890, "ratio": 5e-1, "name": "\\u00e9" }',
    ],
    ids=["other-key-order", "spaces-escapes-and-number-spelling"],
)
async def test_the_same_payload_written_otherwise_is_the_same_request(bridge: Bridge, again: str) -> None:
    job = JobRef(job_type=test_jobs.RECORDS_PAYLOAD)
    assert await create_raw(bridge, job, FABRIC_PAYLOAD) == 202
    assert await create_raw(bridge, job, again) == 202
    await bridge.wait_for(job, "Completed")
    assert list(test_jobs.payloads[job.job_instance_id]) == ["rows", "big", "ratio", "name"]


@pytest.mark.parametrize(
    "other",
    [
        '{"rows": 5, "big": 12345678901234567891, "ratio": 0.5, "name": "é"}',
        '{"rows": 5, "big": 12345678901234567890, "ratio": 0.5, "name": "e"}',
        '{"rows": "5", "big": 12345678901234567890, "ratio": 0.5, "name": "é"}',
    ],
    ids=["big-plus-one", "other-text", "number-as-text"],
)
async def test_another_payload_is_a_conflict(bridge: Bridge, other: str) -> None:
    job = JobRef(job_type=test_jobs.RECORDS_PAYLOAD)
    assert await create_raw(bridge, job, FABRIC_PAYLOAD) == 202
    response = await bridge.create(
        job,
        content=f'{{"invokeType": "Manual", "creationPayload": {other}}}'.encode(),
        headers={**job.headers(), **JSON},
    )
    assert response.status_code == 409
    assert response.json()["errorCode"] == "JobInstanceConflict"


@pytest.mark.parametrize(
    "payload_text",
    ['{"n": 1e400}', '{"n": -1e400}', '{"n": ' + "1" * 101 + "}", '{"n": 0.' + "5" * 100 + "}"],
    ids=["float-overflow", "negative-float-overflow", "101-digit-integer", "102-character-float"],
)
async def test_a_number_that_cannot_be_kept_exactly_is_400_naming_creation_payload(
    bridge: Bridge, payload_text: str
) -> None:
    job = JobRef(job_type=test_jobs.RECORDS_PAYLOAD)
    response = await bridge.create(
        job,
        content=f'{{"invokeType": "Manual", "creationPayload": {payload_text}}}'.encode(),
        headers={**job.headers(), **JSON},
    )
    assert response.status_code == 400
    assert response.json()["messageParameters"] == ["creationPayload"]


async def test_numbers_of_100_characters_are_kept(bridge: Bridge) -> None:
    job = JobRef(job_type=test_jobs.RECORDS_PAYLOAD)
    payload_text = f'{{"n": {"9" * 100}, "m": -{"9" * 99}, "f": 0.{"5" * 98}}}'
    assert await create_raw(bridge, job, payload_text) == 202
    await bridge.wait_for(job, "Completed")
    assert typed(test_jobs.payloads[job.job_instance_id]) == typed(json.loads(payload_text))


async def test_on_postgresql_a_worker_gives_the_handler_the_payload_as_sent(
    postgres_url: str, bridge_settings: BridgeSettings
) -> None:
    settings = ServiceSettings(database=postgres_url, cancel_wait=1.0, cancel_grace=1.0, shutdown_grace=0.5)
    running = await start_running_server(settings, test_jobs.registry, run_handlers=True)
    try:
        async with client_for(create_app(bridge_settings, running.channel)) as client:
            bridge = Bridge(client)
            job = JobRef(job_type=test_jobs.RECORDS_PAYLOAD)
            assert await create_raw(bridge, job, FABRIC_PAYLOAD) == 202
            await bridge.wait_for(job, "Completed")
    finally:
        await running.stop()
    assert typed(test_jobs.payloads[job.job_instance_id]) == typed(json.loads(FABRIC_PAYLOAD))
