"""An error status of the JobService to Fabric's ErrorResponse, by the rows of fabric_jobs.errors.ERRORS.

The HTTP status is that of the row that reads the gRPC status (every status has one, as connect-go maps
every code). The body is the server's fabric_jobs.v1.ErrorDetails (in the google.rpc.Status details). Field
violations (a google.rpc.BadRequest) become an InvalidRequest naming each field as Fabric sent it
(mapping.rest_field); a status without details gets a code from ErrorInfo.reason or the row that reads it.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar, cast

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from fabric_jobs.errors import (
    ERRORS,
    ErrorCode,
    ErrorDetails,
    ErrorRow,
    FieldViolation,
    details_from_pb,
    invalid_request,
)
from fabric_jobs.rest_bridge.errors import HttpError, internal_error
from fabric_jobs.rest_bridge.mapping import rest_field
from fabric_jobs.v1 import job_service_pb2 as pb

logger = logging.getLogger(__name__)

_STATUS_BY_NUMBER = {status.value[0]: status for status in grpc.StatusCode}
ROW_BY_GRPC: dict[grpc.StatusCode, ErrorRow] = {_STATUS_BY_NUMBER[code]: row for row in ERRORS for code in row.reads}
"""The row that reads each gRPC status: its HTTP status, and its code when the status comes without details."""

HTTP_STATUS_BY_GRPC: dict[grpc.StatusCode, int] = {
    status: row.http_status for status, row in ROW_BY_GRPC.items() if row.http_status is not None
}

_Detail = TypeVar("_Detail", bound=Message)


def from_rpc_error(error: grpc.aio.AioRpcError) -> HttpError:
    row = ROW_BY_GRPC[error.code()]
    if row.code == ErrorCode.INTERNAL_ERROR:
        logger.error("JobService answered %s: %s", error.code().name, error.details())
        return internal_error()
    return HttpError(HTTP_STATUS_BY_GRPC[error.code()], _details(error, row))


def _details(error: grpc.aio.AioRpcError, row: ErrorRow) -> ErrorDetails:
    packed = _status_details(error)
    bad_request = _unpack(packed, error_details_pb2.BadRequest())
    if bad_request is not None and bad_request.field_violations:
        return invalid_request(
            [FieldViolation(rest_field(v.field), v.description) for v in bad_request.field_violations]
        )
    details = _unpack(packed, pb.ErrorDetails())
    if details is not None and details.error_code:
        return details_from_pb(details)
    info = _unpack(packed, error_details_pb2.ErrorInfo())
    code = info.reason if info is not None and info.reason else row.code
    return row.details(row.bare_message or error.details() or error.code().name, code=code)


def _status_details(error: grpc.aio.AioRpcError) -> list[Any]:
    try:
        status = rpc_status.from_call(cast(grpc.Call, error))
    except ValueError:
        logger.warning("JobService sent an inconsistent google.rpc.Status", exc_info=True)
        return []
    return [] if status is None else list(status.details)


def _unpack(packed: list[Any], message: _Detail) -> _Detail | None:
    """The first detail of message's type, unpacked into message."""
    for detail in packed:
        if detail.Is(message.DESCRIPTOR):
            detail.Unpack(message)
            return message
    return None
