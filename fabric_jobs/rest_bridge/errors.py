"""Errors at the HTTP edge: Fabric's ErrorResponse with its HTTP status.

Errors the bridge finds itself (bad request, 401, 404, 405, 413, 415, 503) are built here directly, with the
HTTP status, source and permanence of their row in fabric_jobs.errors.ERRORS; an error status of the
JobService is mapped in fabric_jobs.rest_bridge.grpc_errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.responses import JSONResponse

from fabric_jobs.errors import (
    ERROR_ROWS,
    INTERNAL_ERROR,
    ErrorCode,
    ErrorDetails,
    ExtendedInfo,
    FieldViolation,
    invalid_request,
)


class HttpError(Exception):
    """An ErrorResponse to send, with its HTTP status."""

    def __init__(self, status_code: int, details: ErrorDetails, headers: dict[str, str] | None = None) -> None:
        super().__init__(details.message)
        self.status_code = status_code
        self.details = details
        self.headers = headers or {}


def internal_error() -> HttpError:
    return HttpError(500, INTERNAL_ERROR)


def bad_request(violations: Sequence[FieldViolation]) -> HttpError:
    return HttpError(400, invalid_request(violations))


def http_error(
    code: ErrorCode, message: str, parameters: tuple[str, ...] = (), *, status: int | None = None
) -> HttpError:
    """An error of `code`, with the HTTP status of its row unless `status` says otherwise."""
    row = ERROR_ROWS[code]
    status = status or row.http_status
    if status is None:
        raise ValueError(f"{code} is only a job's error, never an HTTP one")
    return HttpError(status, row.details(message, message_parameters=parameters))


def error_body(details: ErrorDetails) -> dict[str, Any]:
    body: dict[str, Any] = {
        "errorCode": details.error_code,
        "message": details.message,
        "source": details.source.value,
        "isPermanent": details.is_permanent,
    }
    if details.message_parameters:
        body["messageParameters"] = list(details.message_parameters)
    if details.more_details:
        body["moreDetails"] = [_extended_body(info) for info in details.more_details]
    return body


def _extended_body(info: ExtendedInfo) -> dict[str, Any]:
    body: dict[str, Any] = {"errorCode": info.error_code, "message": info.message}
    if info.message_parameters:
        body["messageParameters"] = list(info.message_parameters)
    if info.additional_parameters:
        body["additionalParameters"] = [{"name": n, "value": v} for n, v in info.additional_parameters]
    return body


def error_response(error: HttpError) -> JSONResponse:
    return JSONResponse(error_body(error.details), status_code=error.status_code, headers=error.headers)
