"""Errors as values: a Fabric error code, a message, a source and a permanence.

Defined once here, in ERRORS (one row per error code: its gRPC status, HTTP status, whether it is worth
retrying, what it means), and mapped once at each boundary from that table: the server turns a
FabricError's error code into a gRPC status (fabric_jobs.server.edge.status_codes), the bridge turns that status
into an HTTP status and Fabric's ErrorResponse JSON (fabric_jobs.rest_bridge.grpc_errors); errors the bridge
raises itself become an ErrorResponse directly, with the HTTP status of their row. The bridge's openapi text
lists the rows. Both sides convert through the fabric_jobs.v1.ErrorDetails message with the two functions below.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from google.rpc import code_pb2

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
    USER_TOKEN_UNAVAILABLE = "UserTokenUnavailable"
    JOB_INTERRUPTED = "JobInterrupted"
    SERVICE_UNAVAILABLE = "ServiceUnavailable"
    TIMEOUT = "Timeout"
    INTERNAL_ERROR = "InternalError"
    REQUEST_CANCELLED = "RequestCancelled"
    NOT_IMPLEMENTED = "NotImplemented"


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


_S = code_pb2


@dataclass(frozen=True)
class ErrorRow:
    """What one error code means at each boundary."""

    code: ErrorCode
    http_status: int | None
    """The bridge's HTTP status for it; None: it is only ever in a Failed job's errorDetails."""
    grpc_status: code_pb2.Code.ValueType | None
    """The gRPC status the JobService sends it as; None: the JobService never sends it (INTERNAL if it did)."""
    retriable: bool
    """Not the caller's fault and worth retrying: source System, isPermanent false."""
    description: str
    reads: tuple[code_pb2.Code.ValueType, ...] = ()
    """gRPC statuses read as this code when they arrive without the JobService's error details."""
    bare_message: str = ""
    """The message for such a status; empty: the status's own text."""

    def details(self, message: str, *, code: str = "", message_parameters: tuple[str, ...] = ()) -> ErrorDetails:
        """An error of this row (or under another code, read by it): the caller's (User, permanent) or, if
        retriable, this service's (System, not permanent)."""
        source = ErrorSource.SYSTEM if self.retriable else ErrorSource.USER
        return ErrorDetails(code or self.code, message, source, not self.retriable, message_parameters)


ERRORS: tuple[ErrorRow, ...] = (
    ErrorRow(
        ErrorCode.INVALID_REQUEST,
        400,
        _S.INVALID_ARGUMENT,
        False,
        "a path parameter, header or the body is invalid; messageParameters name them",
        reads=(_S.INVALID_ARGUMENT, _S.FAILED_PRECONDITION, _S.OUT_OF_RANGE),
    ),
    ErrorRow(
        ErrorCode.AUTH_ERROR,
        401,
        None,
        False,
        "the SubjectAndApp Authorization header is missing or not valid",
        reads=(_S.UNAUTHENTICATED,),
    ),
    ErrorRow(ErrorCode.NOT_FOUND, 404, None, False, "no such path", reads=(_S.NOT_FOUND,)),
    ErrorRow(
        ErrorCode.JOB_INSTANCE_NOT_FOUND,
        404,
        _S.NOT_FOUND,
        False,
        "no job instance with this tenant, workspace, item, job type and id",
    ),
    ErrorRow(ErrorCode.METHOD_NOT_ALLOWED, 405, None, False, "the path does not accept this method"),
    ErrorRow(
        ErrorCode.JOB_INSTANCE_CONFLICT,
        409,
        _S.ALREADY_EXISTS,
        False,
        "a job instance with this key exists with a different request",
    ),
    ErrorRow(
        ErrorCode.FORBIDDEN,
        403,
        None,
        False,
        "the JobService refused the call (PERMISSION_DENIED without details)",
        reads=(_S.PERMISSION_DENIED,),
    ),
    ErrorRow(
        ErrorCode.CONFLICT,
        409,
        None,
        False,
        "the JobService aborted the call (ABORTED without details)",
        reads=(_S.ALREADY_EXISTS, _S.ABORTED),
    ),
    ErrorRow(
        ErrorCode.TOO_MANY_REQUESTS,
        429,
        None,
        True,
        "the JobService is overloaded (RESOURCE_EXHAUSTED without details); retry",
        reads=(_S.RESOURCE_EXHAUSTED,),
    ),
    ErrorRow(
        ErrorCode.UNSUPPORTED_JOB_TYPE,
        400,
        _S.FAILED_PRECONDITION,
        False,
        "the job type is not registered for the item type",
    ),
    ErrorRow(ErrorCode.PAYLOAD_TOO_LARGE, 413, None, False, "the body is larger than the configured limit"),
    ErrorRow(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 415, None, False, "the Create body is not application/json"),
    ErrorRow(ErrorCode.JOB_EXECUTION_FAILED, None, None, False, "in errorDetails of a Failed job: its handler failed"),
    ErrorRow(
        ErrorCode.JOB_EXECUTOR_LOST,
        None,
        None,
        True,
        "in errorDetails of a Failed job: the process running it died, or shut down with it still running (not "
        "permanent)",
    ),
    ErrorRow(
        ErrorCode.JOB_INTERRUPTED,
        None,
        None,
        True,
        "in errorDetails of a Failed job: its handler stopped when told the service shuts down (not permanent)",
    ),
    ErrorRow(
        ErrorCode.USER_TOKEN_UNAVAILABLE,
        None,
        None,
        False,
        "in errorDetails of a Failed job: no token on behalf of its user; Entra's error and correlation id in "
        "moreDetails, permanent unless Entra may answer later",
    ),
    ErrorRow(
        ErrorCode.SERVICE_UNAVAILABLE,
        503,
        _S.UNAVAILABLE,
        True,
        "the job service cannot be reached; retry",
        reads=(_S.UNAVAILABLE,),
        bare_message="The job service is unavailable. Retry later.",
    ),
    ErrorRow(
        ErrorCode.TIMEOUT,
        504,
        None,
        True,
        "the job service did not answer within the request timeout; retry",
        reads=(_S.DEADLINE_EXCEEDED,),
        bare_message="The job service did not answer in time. Retry later.",
    ),
    ErrorRow(
        ErrorCode.INTERNAL_ERROR,
        500,
        _S.INTERNAL,
        True,
        "an unexpected error; details are in the service's logs, never in the body",
        reads=(_S.INTERNAL, _S.UNKNOWN, _S.DATA_LOSS),
    ),
    ErrorRow(
        ErrorCode.REQUEST_CANCELLED,
        499,
        None,
        True,
        "the JobService cancelled the call (CANCELLED without details); retry",
        reads=(_S.CANCELLED,),
        bare_message="The job service cancelled the call. Retry later.",
    ),
    ErrorRow(
        ErrorCode.NOT_IMPLEMENTED,
        501,
        None,
        True,
        "the JobService does not have this call (UNIMPLEMENTED: an older release); retry",
        reads=(_S.UNIMPLEMENTED,),
        bare_message="The job service does not implement this call. Retry later.",
    ),
)
"""One row per error code, in the order the openapi text lists them. Every gRPC status but OK is read by one row."""

ERROR_ROWS: dict[str, ErrorRow] = {row.code: row for row in ERRORS}


class FabricError(Exception):
    """The one root error: Fabric's error details, raised anywhere; each boundary maps its error code once."""

    def __init__(self, details: ErrorDetails, field_violations: tuple[FieldViolation, ...] = ()) -> None:
        super().__init__(details.message)
        self.details = details
        self.field_violations = field_violations

    def __str__(self) -> str:
        return f"{self.details.error_code}: {self.details.message}"


def details_for(code: ErrorCode, message: str, *, message_parameters: tuple[str, ...] = ()) -> ErrorDetails:
    return ERROR_ROWS[code].details(message, message_parameters=message_parameters)


def error(code: ErrorCode, message: str, *, message_parameters: tuple[str, ...] = ()) -> FabricError:
    return FabricError(details_for(code, message, message_parameters=message_parameters))


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


def service_unavailable(message: str) -> ErrorDetails:
    return details_for(ErrorCode.SERVICE_UNAVAILABLE, message)


def job_executor_lost(message: str) -> ErrorDetails:
    return details_for(ErrorCode.JOB_EXECUTOR_LOST, message)


INTERNAL_ERROR = details_for(ErrorCode.INTERNAL_ERROR, "An internal error occurred.")
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
