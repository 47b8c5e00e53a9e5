"""Schemathesis against the `/openapi.json` served by a real `fabric-jobs serve --dev`: requests generated from
the served document, positive and negative, with the demo's item type, job type and one tenant pinned so that
they reach the JobService. No answer may be a 5xx, and every answer must match the document (2xx bodies and
error bodies alike).

A few hundred requests in CI; FABRIC_JOBS_FUZZ_EXAMPLES=N generates N per operation (three operations).
Generation is seeded from the test's `rng` (FABRIC_JOBS_TEST_SEED replays a run).
"""

from __future__ import annotations

import os
import random
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from fabric_jobs import demo
from tests.processes import Processes, launch

TENANT = "7c1d1a1e-0000-4000-8000-00000000c11e"
EXAMPLES = int(os.environ.get("FABRIC_JOBS_FUZZ_EXAMPLES") or 100)
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
OPERATIONS = ["Jobs_CreateItemJobInstance", "Jobs_GetItemJobInstanceState", "Jobs_CancelItemJobInstance"]


PAYLOADS = [
    {"durationSeconds": 0},
    {"durationSeconds": 0, "outcome": "Failed"},
    {"durationSeconds": 3600},
    {"durationSeconds": 3600, "ignoreCancellation": True},
]
"""The jobs created before the fuzzing, whose keys a generated Get or Cancel uses half of the time: completed,
failed, running (so that Cancel cancels it) and running while ignoring its cancellation."""


@pytest.fixture(scope="module")
def served_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="fabric-jobs-fuzz-") as directory, Processes() as processes:
        database = "sqlite:///" + str(Path(directory) / "jobs.db")
        args = ["serve", "--dev", "--database", database, "--grpc-port", "0", "--rest-port", "0"]
        serve = processes.track(launch([*args, "--log-level", "WARNING"], grpc=True, rest=True))
        yield serve.rest_url


@pytest.fixture(scope="module")
def known_jobs(served_url: str) -> list[dict[str, str]]:
    jobs = []
    for payload in PAYLOADS:
        ids = {name: str(uuid.uuid4()) for name in ("workspaceId", "itemId", "jobInstanceId")}
        path = f"/workspaces/{ids['workspaceId']}/items/{demo.ITEM_TYPE}/{ids['itemId']}/jobTypes/{demo.JOB_TYPE}"
        response = httpx.post(
            f"{served_url}{path}/instances/{ids['jobInstanceId']}",
            json={"invokeType": "Manual", "creationPayload": payload},
            headers={"ActivityId": "a", "RequestId": "r", "x-ms-client-tenant-id": TENANT},
        )
        assert response.status_code == 202, response.text
        jobs.append(ids)
    return jobs


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("operation_id", OPERATIONS)
def test_no_server_error_and_every_answer_as_documented(
    served_url: str, known_jobs: list[dict[str, str]], operation_id: str, rng: random.Random
) -> None:
    schema = schemathesis.openapi.from_url(served_url + "/openapi.json")
    operation = schema.find_operation_by_id(operation_id)
    cases = st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in GenerationMode))
    answers: list[int] = []

    @hypothesis.seed(rng.randrange(2**32))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases, known=st.none() | st.sampled_from(known_jobs))
    def fuzz(case: schemathesis.Case[Any], known: dict[str, str] | None) -> None:
        pinned = {"itemType": demo.ITEM_TYPE, "jobType": demo.JOB_TYPE, **(known or {})}
        case.path_parameters = {**(case.path_parameters or {}), **pinned}
        case.headers["x-ms-client-tenant-id"] = TENANT
        response = case.call_and_validate(base_url=served_url, checks=CHECKS, timeout=30)
        answers.append(response.status_code)

    fuzz()
    print(f"{operation_id}: {len(answers)} requests, statuses {sorted(set(answers))}")
    assert len(answers) >= EXAMPLES // 2
