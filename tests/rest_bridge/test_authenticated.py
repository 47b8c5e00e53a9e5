"""The bridge with SubjectAndApp authentication configured (tokens from tests/tokens.py)."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import grpc
import pytest
from starlette.applications import Starlette

from fabric_jobs.rest_bridge.app import create_app
from fabric_jobs.rest_bridge.auth import Authenticator
from fabric_jobs.rest_bridge.settings import BridgeSettings
from tests import tokens
from tests.rest_bridge.client import BASE_PATH, Bridge, JobRef, client_for
from tests.rest_bridge.conftest import RecordingStub


def valid_authorization() -> str:
    return tokens.authorization_header(tokens.mint_subject_token(), tokens.mint_app_token())


def authenticated_app(tmp_path: pathlib.Path, channel: grpc.aio.Channel) -> Starlette:
    authenticator = Authenticator(tokens.auth_settings_for(tokens.write_jwks(tmp_path)))
    return create_app(BridgeSettings(base_path=BASE_PATH), channel, authenticator=authenticator)


@pytest.fixture
async def authenticated_bridge(tmp_path: pathlib.Path, channel: grpc.aio.Channel) -> AsyncIterator[Bridge]:
    async with client_for(authenticated_app(tmp_path, channel)) as client:
        yield Bridge(client)


@pytest.mark.parametrize(
    "authorization",
    [None, "", "garbage", "Bearer abc", 'SubjectAndAppToken1.0 subjectToken="a.b.c", appToken="d.e.f"'],
)
@pytest.mark.parametrize("call", ["create", "get", "cancel"])
async def test_missing_or_bad_authorization_is_401_auth_error(
    tmp_path: pathlib.Path, authorization: str | None, call: str
) -> None:
    stub = RecordingStub()
    async with client_for(authenticated_app(tmp_path, stub.channel())) as client:
        job = JobRef(tenant_id=tokens.CLIENT_TENANT_ID)
        headers = job.headers(Authorization=authorization)
        response = await getattr(Bridge(client), call)(job, headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert (body["errorCode"], body["source"], body["isPermanent"]) == ("AuthError", "User", True)
    assert body["message"]
    assert "messageParameters" not in body
    assert stub.calls == []


async def test_auth_runs_before_body_validation(tmp_path: pathlib.Path) -> None:
    stub = RecordingStub()
    async with client_for(authenticated_app(tmp_path, stub.channel())) as client:
        job = JobRef(tenant_id=tokens.CLIENT_TENANT_ID)
        response = await Bridge(client).create(job, {"nonsense": True})
    assert response.status_code == 401
    assert stub.calls == []


async def test_valid_tokens_pass(authenticated_bridge: Bridge) -> None:
    job = JobRef(tenant_id=tokens.CLIENT_TENANT_ID)
    headers = job.headers(Authorization=valid_authorization())
    assert (await authenticated_bridge.create(job, headers=headers)).status_code == 202
    response = await authenticated_bridge.get(job, headers=job.headers(Authorization=valid_authorization()))
    assert response.status_code == 200


async def test_without_ids_a_request_still_needs_its_token_and_tenant(authenticated_bridge: Bridge) -> None:
    """Generated ActivityId and RequestId loosen nothing else (issue 18): no token is 401, no tenant 400."""
    job = JobRef(tenant_id=tokens.CLIENT_TENANT_ID)
    no_ids = {"ActivityId": None, "RequestId": None}
    unauthenticated = await authenticated_bridge.create(job, headers=job.headers(**no_ids))
    no_tenant = await authenticated_bridge.create(
        job, headers=job.headers(**no_ids, Authorization=valid_authorization(), **{"x-ms-client-tenant-id": None})
    )
    created = await authenticated_bridge.create(job, headers=job.headers(**no_ids, Authorization=valid_authorization()))
    assert (unauthenticated.status_code, unauthenticated.json()["errorCode"]) == (401, "AuthError")
    assert no_tenant.status_code == 401, "the subject token's tenant must match the header, which is missing"
    assert created.status_code == 202
    assert unauthenticated.headers["RequestId"]
    assert created.headers["RequestId"] != unauthenticated.headers["RequestId"]


async def test_a_subject_of_another_tenant_is_401(authenticated_bridge: Bridge) -> None:
    job = JobRef(tenant_id=tokens.OTHER_TENANT_ID)
    response = await authenticated_bridge.get(job, headers=job.headers(Authorization=valid_authorization()))
    assert response.status_code == 401
    assert response.json()["errorCode"] == "AuthError"


async def test_health_and_openapi_need_no_token(authenticated_bridge: Bridge) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json"):
        assert (await authenticated_bridge.client.get(path)).status_code == 200
