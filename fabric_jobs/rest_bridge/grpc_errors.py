"""An error status of the JobService to Fabric's ErrorResponse, by the rows of fabric_jobs.errors.ERRORS.

The HTTP status is that of the row that reads the gRPC status (every status has one, as connect-go maps
every code). The status is decoded once, by fabric_jobs.client.errors: the body is the server's ErrorDetails;
field violations become an InvalidRequest naming each field as Fabric sent it (mapping.rest_field); a status
without details gets a code from ErrorInfo.reason or the row that reads it.
"""

from __future__ import annotations

import logging

import grpc

from fabric_jobs.client.errors import ROW_BY_GRPC, ServiceError, TransportError
from fabric_jobs.client.errors import from_rpc_error as decode
from fabric_jobs.errors import ErrorCode, FieldViolation, invalid_request
from fabric_jobs.rest_bridge.errors import HttpError, internal_error
from fabric_jobs.rest_bridge.mapping import rest_field

logger = logging.getLogger(__name__)

HTTP_STATUS_BY_GRPC: dict[grpc.StatusCode, int] = {
    status: row.http_status for status, row in ROW_BY_GRPC.items() if row.http_status is not None
}


def from_rpc_error(error: grpc.aio.AioRpcError) -> HttpError:
    return from_client_error(decode(error))


def from_client_error(error: ServiceError | TransportError) -> HttpError:
    """The ErrorResponse of a failed call: the service's details (field violations by their REST names), or for a
    call that got no answer, those of the row that reads its status."""
    row = ROW_BY_GRPC[error.status]
    if row.code == ErrorCode.INTERNAL_ERROR:
        logger.error("JobService answered %s: %s", error.status.name, error)
        return internal_error()
    status = HTTP_STATUS_BY_GRPC[error.status]
    if isinstance(error, TransportError):
        return HttpError(status, row.details(row.bare_message or error.message or error.status.name))
    if error.field_violations:
        violations = [FieldViolation(rest_field(v.field), v.description) for v in error.field_violations]
        return HttpError(status, invalid_request(violations))
    return HttpError(status, error.details)
