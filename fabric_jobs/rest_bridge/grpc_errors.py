"""An error status of the JobService to Fabric's ErrorResponse: one table of HTTP statuses, REST field names.

The body is the server's fabric_jobs.v1.ErrorDetails (in the google.rpc.Status details). Field
violations (a google.rpc.BadRequest) become an InvalidRequest naming each field as Fabric sent it
(mapping.rest_field); a status without details gets a code from ErrorInfo.reason or its HTTP status.
"""

from __future__ import annotations

import logging

import grpc
from google.rpc import error_details_pb2

from fabric_jobs.client.errors import status_details, unpack
from fabric_jobs.errors import (
    ErrorCode,
    ErrorDetails,
    FieldViolation,
    details_from_pb,
    invalid_request,
    system_error,
)
from fabric_jobs.rest_bridge.errors import HttpError, internal_error
from fabric_jobs.rest_bridge.mapping import rest_field
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
"""Any other status is 500 InternalError."""

_FALLBACK_CODE_BY_HTTP = {
    400: ErrorCode.INVALID_REQUEST,
    401: ErrorCode.AUTH_ERROR,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    409: ErrorCode.CONFLICT,
    429: ErrorCode.TOO_MANY_REQUESTS,
    503: ErrorCode.SERVICE_UNAVAILABLE,
    504: ErrorCode.TIMEOUT,
}
_RETRIABLE_HTTP = frozenset({429, 503, 504})
_FALLBACK_MESSAGE_BY_HTTP = {
    503: "The job service is unavailable. Retry later.",
    504: "The job service did not answer in time. Retry later.",
}


def from_rpc_error(error: grpc.aio.AioRpcError) -> HttpError:
    code = error.code()
    status = HTTP_STATUS_BY_GRPC.get(code, 500)
    if status == 500:
        logger.error("JobService answered %s: %s", code.name, error.details())
        return internal_error()
    return HttpError(status, _details(error, status))


def _details(error: grpc.aio.AioRpcError, status: int) -> ErrorDetails:
    packed = status_details(error)
    bad_request = unpack(packed, error_details_pb2.BadRequest())
    if bad_request is not None and bad_request.field_violations:
        return invalid_request(
            [FieldViolation(rest_field(v.field), v.description) for v in bad_request.field_violations]
        )
    details = unpack(packed, pb.ErrorDetails())
    if details is not None and details.error_code:
        return details_from_pb(details)
    info = unpack(packed, error_details_pb2.ErrorInfo())
    code = info.reason if info is not None and info.reason else _FALLBACK_CODE_BY_HTTP[status]
    message = _FALLBACK_MESSAGE_BY_HTTP.get(status) or error.details() or error.code().name
    return system_error(code, message) if status in _RETRIABLE_HTTP else ErrorDetails(code, message)
