"""Errors at the HTTP edge: every failure becomes Fabric's ErrorResponse with one HTTP status.

A gRPC status maps through one table; the server's fabric_jobs.v1.ErrorDetails (in the
google.rpc.Status details) gives the body, ErrorInfo.reason and the status message the fallback.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from starlette.responses import JSONResponse

from fabric_jobs.errors import (
    ErrorCode,
    ErrorDetails,
    ErrorSource,
    ExtendedInfo,
    FabricError,
    FieldViolation,
    details_from_pb,
    invalid_argument,
)
from fabric_jobs.v1 import job_service_pb2 as pb

logger = logging.getLogger(__name__)

HTTP_STATUS_BY_GRPC: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}

_FALLBACK_CODE_BY_HTTP = {
    400: ErrorCode.INVALID_REQUEST.value,
    401: ErrorCode.AUTH_ERROR.value,
    403: ErrorCode.FORBIDDEN.value,
    404: ErrorCode.NOT_FOUND.value,
    409: ErrorCode.CONFLICT.value,
    429: ErrorCode.TOO_MANY_REQUESTS.value,
    503: ErrorCode.SERVICE_UNAVAILABLE.value,
    504: ErrorCode.TIMEOUT.value,
}
_RETRIABLE_HTTP = frozenset({429, 503, 504})
_FALLBACK_MESSAGE_BY_HTTP = {
    503: "The job service is unavailable. Retry later.",
    504: "The job service did not answer in time. Retry later.",
}


class HttpError(Exception):
    """An ErrorResponse to send, with its HTTP status."""

    def __init__(self, status_code: int, details: ErrorDetails, headers: dict[str, str] | None = None) -> None:
        super().__init__(details.message)
        self.status_code = status_code
        self.details = details
        self.headers = headers or {}


def internal_error() -> HttpError:
    return HttpError(
        500,
        ErrorDetails(
            ErrorCode.INTERNAL_ERROR,
            "An internal error occurred.",
            source=ErrorSource.SYSTEM,
            is_permanent=False,
        ),
    )


def bad_request(violations: list[FieldViolation]) -> HttpError:
    return from_fabric_error(invalid_argument(violations))


def client_error(status_code: int, code: str, message: str, parameters: tuple[str, ...] = ()) -> HttpError:
    return HttpError(status_code, ErrorDetails(code, message, message_parameters=parameters))


def from_fabric_error(error: FabricError) -> HttpError:
    status = HTTP_STATUS_BY_GRPC.get(grpc.StatusCode[error.kind.name], 500)
    if status == 500:
        return internal_error()
    return HttpError(status, error.details)


def from_rpc_error(error: grpc.aio.AioRpcError) -> HttpError:
    code = error.code()
    status = HTTP_STATUS_BY_GRPC.get(code, 500)
    if status == 500:
        logger.error("JobService answered %s: %s", code.name, error.details())
        return internal_error()
    details = _details_in_status(error)
    if details is not None:
        return HttpError(status, details)
    reason = _reason_in_status(error)
    message = _FALLBACK_MESSAGE_BY_HTTP.get(status) or error.details() or code.name
    retriable = status in _RETRIABLE_HTTP
    return HttpError(
        status,
        ErrorDetails(
            reason or _FALLBACK_CODE_BY_HTTP[status],
            message,
            source=ErrorSource.SYSTEM if retriable else ErrorSource.USER,
            is_permanent=not retriable,
        ),
    )


def _status_details(error: grpc.aio.AioRpcError) -> list[Any]:
    try:
        status = rpc_status.from_call(cast(grpc.Call, error))
    except ValueError:
        logger.warning("JobService sent an inconsistent google.rpc.Status", exc_info=True)
        return []
    return [] if status is None else list(status.details)


def _details_in_status(error: grpc.aio.AioRpcError) -> ErrorDetails | None:
    for detail in _status_details(error):
        if detail.Is(pb.ErrorDetails.DESCRIPTOR):
            message = pb.ErrorDetails()
            detail.Unpack(message)
            if message.error_code:
                return details_from_pb(message)
    return None


def _reason_in_status(error: grpc.aio.AioRpcError) -> str | None:
    for detail in _status_details(error):
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.reason:
                return str(info.reason)
    return None


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
