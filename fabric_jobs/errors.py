"""Errors as values: a Fabric error code, a message, a source and a permanence.

Defined once here, mapped once at each boundary: the server turns a FabricError's error code into
a gRPC status (fabric_jobs.server.grpc_errors), the bridge turns that status into an HTTP status
and Fabric's ErrorResponse JSON (fabric_jobs.rest_bridge.grpc_errors); errors the bridge raises
itself become an ErrorResponse directly. Both sides convert through the fabric_jobs.v1.ErrorDetails
message with the two functions below.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from fabric_jobs.v1 import job_service_pb2 as pb


class ErrorSource(enum.StrEnum):
    SYSTEM = "System"
    USER = "User"
    EXTERNAL = "External"


class ErrorCode(enum.StrEnum):
    """The errorCode values this service sends."""

    INVALID_REQUEST = "InvalidRequest"
    JOB_INSTANCE_NOT_FOUND = "JobInstanceNotFound"
    JOB_INSTANCE_CONFLICT = "JobInstanceConflict"
    CONFLICT = "Conflict"
    FORBIDDEN = "Forbidden"
    TOO_MANY_REQUESTS = "TooManyRequests"
    UNSUPPORTED_JOB_TYPE = "UnsupportedJobType"
    PAYLOAD_TOO_LARGE = "PayloadTooLarge"
    AUTH_ERROR = "AuthError"
    NOT_FOUND = "NotFound"
    METHOD_NOT_ALLOWED = "MethodNotAllowed"
    UNSUPPORTED_MEDIA_TYPE = "UnsupportedMediaType"
    JOB_EXECUTION_FAILED = "JobExecutionFailed"
    JOB_EXECUTOR_LOST = "JobExecutorLost"
    JOB_INTERRUPTED = "JobInterrupted"
    SERVICE_UNAVAILABLE = "ServiceUnavailable"
    TIMEOUT = "Timeout"
    INTERNAL_ERROR = "InternalError"


@dataclass(frozen=True)
class ExtendedInfo:
    """Fabric's ErrorExtendedInformation."""

    error_code: str
    message: str
    message_parameters: tuple[str, ...] = ()
    additional_parameters: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


@dataclass(frozen=True)
class ErrorDetails:
    """Fabric's ErrorDetails: the error of a failed job, and the body of every ErrorResponse."""

    error_code: str
    message: str
    source: ErrorSource = ErrorSource.USER
    is_permanent: bool = True
    message_parameters: tuple[str, ...] = ()
    more_details: tuple[ExtendedInfo, ...] = ()


class FabricError(Exception):
    """The one root error: Fabric's error details, raised anywhere; each boundary maps its error code once."""

    def __init__(self, details: ErrorDetails, field_violations: tuple[FieldViolation, ...] = ()) -> None:
        super().__init__(details.message)
        self.details = details
        self.field_violations = field_violations

    def __str__(self) -> str:
        return f"{self.details.error_code}: {self.details.message}"


def error(code: ErrorCode, message: str, *, message_parameters: tuple[str, ...] = ()) -> FabricError:
    """A permanent error of the caller's request."""
    return FabricError(ErrorDetails(code, message, message_parameters=message_parameters))


def invalid_request(violations: Sequence[FieldViolation]) -> ErrorDetails:
    """One InvalidRequest naming every bad field."""
    summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
    return ErrorDetails(
        error_code=ErrorCode.INVALID_REQUEST,
        message=f"The request is invalid: {summary}",
        message_parameters=tuple(v.field for v in violations),
        more_details=tuple(
            ExtendedInfo(error_code=ErrorCode.INVALID_REQUEST, message=v.description, message_parameters=(v.field,))
            for v in violations
        ),
    )


def invalid_argument(violations: Sequence[FieldViolation]) -> FabricError:
    return FabricError(invalid_request(violations), tuple(violations))


def system_error(code: str, message: str) -> ErrorDetails:
    """A failure of this service, not of the request: worth retrying."""
    return ErrorDetails(code, message, source=ErrorSource.SYSTEM, is_permanent=False)


def service_unavailable(message: str) -> ErrorDetails:
    return system_error(ErrorCode.SERVICE_UNAVAILABLE, message)


def job_executor_lost(message: str) -> ErrorDetails:
    return system_error(ErrorCode.JOB_EXECUTOR_LOST, message)


INTERNAL_ERROR = system_error(ErrorCode.INTERNAL_ERROR, "An internal error occurred.")
"""The whole answer to an unexpected failure; what happened is in the logs, never in a reply."""


_SOURCE_TO_PB = {
    ErrorSource.SYSTEM: pb.ERROR_SOURCE_SYSTEM,
    ErrorSource.USER: pb.ERROR_SOURCE_USER,
    ErrorSource.EXTERNAL: pb.ERROR_SOURCE_EXTERNAL,
}
_SOURCE_FROM_PB = {value: key for key, value in _SOURCE_TO_PB.items()}


def source_to_pb(source: ErrorSource) -> pb.ErrorSource.ValueType:
    return _SOURCE_TO_PB[source]


def source_from_pb(source: pb.ErrorSource.ValueType) -> ErrorSource:
    return _SOURCE_FROM_PB.get(source, ErrorSource.SYSTEM)


def details_to_pb(details: ErrorDetails) -> pb.ErrorDetails:
    return pb.ErrorDetails(
        error_code=details.error_code,
        message=details.message,
        message_parameters=list(details.message_parameters),
        source=source_to_pb(details.source),
        is_permanent=details.is_permanent,
        more_details=[
            pb.ErrorExtendedInformation(
                error_code=info.error_code,
                message=info.message,
                message_parameters=list(info.message_parameters),
                additional_parameters=[pb.NameValuePair(name=n, value=v) for n, v in info.additional_parameters],
            )
            for info in details.more_details
        ],
    )


def details_from_pb(details: pb.ErrorDetails) -> ErrorDetails:
    return ErrorDetails(
        error_code=details.error_code,
        message=details.message,
        source=source_from_pb(details.source),
        is_permanent=details.is_permanent,
        message_parameters=tuple(details.message_parameters),
        more_details=tuple(
            ExtendedInfo(
                error_code=info.error_code,
                message=info.message,
                message_parameters=tuple(info.message_parameters),
                additional_parameters=tuple((p.name, p.value) for p in info.additional_parameters),
            )
            for info in details.more_details
        ),
    )
