"""Each error code the JobService sends arrives as its exception, with the ErrorDetails of the rich status intact;
a call that reaches no service is a TransportError."""

from __future__ import annotations

import dataclasses
import sqlite3

import grpc
import psycopg
import pytest

from fabric_jobs.client import (
    NO_RETRIES,
    ErrorSource,
    FieldViolation,
    InternalError,
    InvalidRequest,
    JobInstanceConflict,
    JobInstanceNotFound,
    JobsClient,
    ServiceError,
    ServiceUnavailable,
    TransportError,
    UnsupportedJobType,
)
from fabric_jobs.client.errors import SERVICE_ERRORS
from fabric_jobs.errors import ERRORS, ErrorCode
from tests import jobs
from tests.client.conftest import Backend, Stack, new_key

WAIT = 20.0


def execute(backend: Backend, statement: str, *params: str) -> None:
    """Change the backend's database behind the service's back."""
    if backend.store == "sqlite":
        with sqlite3.connect(backend.database.removeprefix("sqlite:///")) as connection:
            connection.execute(statement.replace("%s", "?"), params)
        return
    with psycopg.connect(backend.database, autocommit=True) as connection:
        connection.execute(statement, params)


def test_every_error_code_the_service_maps_has_its_exception() -> None:
    sent = {row.code for row in ERRORS if row.grpc_status is not None}
    assert set(SERVICE_ERRORS) == sent
    for code, cls in SERVICE_ERRORS.items():
        assert issubclass(cls, ServiceError)
        assert cls.row is not None
        assert (cls.error_code, cls.row.code) == (code, code)
    with pytest.raises(TypeError, match="never sends AuthError"):
        type("AuthFailed", (ServiceError,), {}, code=ErrorCode.AUTH_ERROR)


async def test_an_invalid_request_names_each_bad_field(stack: Stack) -> None:
    key = dataclasses.replace(new_key(), tenant_id="nope", item_id="also-nope")
    with pytest.raises(InvalidRequest) as raised:
        await stack.jobs.create(key)
    error = raised.value
    assert error.status is grpc.StatusCode.INVALID_ARGUMENT
    assert {violation.field for violation in error.field_violations} == {"key.tenant_id", "key.item_id"}
    assert all(isinstance(violation, FieldViolation) and violation.description for violation in error.field_violations)
    assert error.details.error_code == "InvalidRequest"
    assert set(error.details.message_parameters) == {"key.tenant_id", "key.item_id"}
    assert len(error.details.more_details) == 2
    assert error.details.source is ErrorSource.USER
    assert not error.retriable


async def test_an_unregistered_job_type_is_unsupported(stack: Stack) -> None:
    with pytest.raises(UnsupportedJobType) as raised:
        await stack.jobs.create(new_key("notRegistered"))
    assert raised.value.status is grpc.StatusCode.FAILED_PRECONDITION
    assert raised.value.details.is_permanent


async def test_an_unknown_key_is_not_found_and_another_request_for_a_key_a_conflict(stack: Stack) -> None:
    key = new_key()
    with pytest.raises(JobInstanceNotFound) as not_found:
        await stack.jobs.get(key)
    assert not_found.value.status is grpc.StatusCode.NOT_FOUND
    await stack.jobs.create(key, payload={"delaySeconds": 0})
    with pytest.raises(JobInstanceConflict) as conflict:
        await stack.jobs.create(key, payload={"delaySeconds": 1})
    assert conflict.value.status is grpc.StatusCode.ALREADY_EXISTS
    assert conflict.value.details.error_code == "JobInstanceConflict"
    await stack.jobs.wait(key, timeout=WAIT)


async def test_a_store_that_fails_is_service_unavailable(stack: Stack, backend: Backend) -> None:
    key = new_key()
    await stack.jobs.create(key)
    await stack.jobs.wait(key, timeout=WAIT)
    execute(backend, "ALTER TABLE job_instances RENAME TO job_instances_away")
    try:
        with pytest.raises(ServiceUnavailable) as raised:
            await stack.jobs.get(key)
    finally:
        execute(backend, "ALTER TABLE job_instances_away RENAME TO job_instances")
    assert raised.value.status is grpc.StatusCode.UNAVAILABLE
    assert raised.value.details.source is ErrorSource.SYSTEM
    assert raised.value.retriable


async def test_a_row_the_service_cannot_read_is_an_internal_error(stack: Stack, backend: Backend) -> None:
    key = new_key()
    await stack.jobs.create(key)
    await stack.jobs.wait(key, timeout=WAIT)
    execute(
        backend, "UPDATE job_instances SET error = %s WHERE job_instance_id = %s", '{"bogus": 1}', key.job_instance_id
    )
    with pytest.raises(InternalError) as raised:
        await stack.jobs.get(key)
    assert raised.value.status is grpc.StatusCode.INTERNAL
    assert raised.value.details.message == "An internal error occurred."
    assert raised.value.retriable


async def test_no_service_at_the_target_is_a_transport_error(unused_tcp_port: int) -> None:
    async with JobsClient.connect(f"127.0.0.1:{unused_tcp_port}", retry=NO_RETRIES, timeout=5) as jobs_client:
        with pytest.raises(TransportError) as raised:
            await jobs_client.get(new_key(jobs.QUICK))
    assert not isinstance(raised.value, ServiceError)
    assert raised.value.status is grpc.StatusCode.UNAVAILABLE
    assert raised.value.retriable
