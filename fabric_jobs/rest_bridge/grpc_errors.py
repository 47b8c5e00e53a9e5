"""An error status of the JobService to Fabric's ErrorResponse: one table of HTTP statuses, REST field names.

The status is decoded once, by fabric_jobs.client.errors. The body is the server's ErrorDetails; field
violations become an InvalidRequest naming each field as Fabric sent it (mapping.rest_field); a call that got
no answer gets a code from its HTTP status.
"""

from __future__ import annotations

import logging

import grpc

from fabric_jobs.client.errors import ServiceError, TransportError
from fabric_jobs.client.errors import from_rpc_error as decode
from fabric_jobs.errors import (
    ErrorCode,
    ErrorDetails,
    FieldViolation,
    invalid_request,
    system_error,
)
from fabric_jobs.rest_bridge.errors import HttpError, internal_error
from fabric_jobs.rest_bridge.mapping import rest_field

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
    return from_client_error(decode(error))


def from_client_error(error: ServiceError | TransportError) -> HttpError:
    """The ErrorResponse of a failed call: the service's details (field violations by their REST names), or for a
    call that got no answer, an error code and message from its HTTP status."""
    status = HTTP_STATUS_BY_GRPC.get(error.status, 500)
    if status == 500:
        logger.error("JobService answered %s: %s", error.status.name, error)
        return internal_error()
    if isinstance(error, ServiceError):
        if error.field_violations:
            violations = [FieldViolation(rest_field(v.field), v.description) for v in error.field_violations]
            return HttpError(status, invalid_request(violations))
        return HttpError(status, error.details)
    code = _FALLBACK_CODE_BY_HTTP[status]
    message = _FALLBACK_MESSAGE_BY_HTTP.get(status) or error.message or error.status.name
    return HttpError(status, system_error(code, message) if status in _RETRIABLE_HTTP else ErrorDetails(code, message))
