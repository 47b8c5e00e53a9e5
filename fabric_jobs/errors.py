"""Errors as values: a Fabric error code, a message, a source and a permanence.

Defined once here, mapped once at each boundary: the server turns a FabricError into a gRPC
status (fabric_jobs.server.status), the bridge turns that status back into Fabric's
ErrorResponse JSON (fabric_jobs.rest_bridge.errors). Both sides convert through the
fabric_jobs.v1.ErrorDetails message with the two functions below.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from fabric_jobs.v1 import job_service_pb2 as pb


class ErrorSource(enum.StrEnum):
    SYSTEM = "System"
    USER = "User"
    EXTERNAL = "External"


class ErrorKind(enum.Enum):
    """What went wrong, in terms both gRPC and HTTP can express."""

    INVALID_ARGUMENT = "invalid_argument"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    FAILED_PRECONDITION = "failed_precondition"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    UNAVAILABLE = "unavailable"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    INTERNAL = "internal"


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
    """The one root error. Raise it anywhere; each boundary maps it once."""

    def __init__(
        self,
        kind: ErrorKind,
        details: ErrorDetails,
        field_violations: tuple[FieldViolation, ...] = (),
    ) -> None:
        super().__init__(details.message)
        self.kind = kind
        self.details = details
        self.field_violations = field_violations

    def __str__(self) -> str:
        return f"{self.details.error_code}: {self.details.message}"


def error(
    kind: ErrorKind,
    code: str,
    message: str,
    *,
    source: ErrorSource = ErrorSource.USER,
    is_permanent: bool = True,
    message_parameters: tuple[str, ...] = (),
) -> FabricError:
    return FabricError(kind, ErrorDetails(code, message, source, is_permanent, message_parameters))


def invalid_argument(violations: list[FieldViolation]) -> FabricError:
    """One INVALID_ARGUMENT error naming every bad field."""
    summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
    details = ErrorDetails(
        error_code=ErrorCode.INVALID_REQUEST,
        message=f"The request is invalid: {summary}",
        message_parameters=tuple(v.field for v in violations),
        more_details=tuple(
            ExtendedInfo(error_code=ErrorCode.INVALID_REQUEST, message=v.description, message_parameters=(v.field,))
            for v in violations
        ),
    )
    return FabricError(ErrorKind.INVALID_ARGUMENT, details, tuple(violations))


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
