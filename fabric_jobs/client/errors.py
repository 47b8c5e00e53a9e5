"""What a failed call raises: the service's answer as an exception named by its Fabric error code, carrying the
ErrorDetails decoded from the rich status; a call that got no answer from the service as a TransportError.

    JobsError
    ├── ServiceError: the service answered with an error (details, field_violations, retriable)
    │   ├── InvalidRequest, UnsupportedJobType, JobInstanceNotFound, JobInstanceConflict
    │   └── ServiceUnavailable, InternalError
    ├── TransportError: no answer from the service (unreachable, deadline exceeded, not a JobService, ...)
    └── WaitTimeout: wait() ran out of time before the job ended (also a TimeoutError)
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, TypeVar, cast

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from fabric_jobs.client.results import JobState
from fabric_jobs.errors import (
    ERROR_ROWS,
    ERRORS,
    ErrorCode,
    ErrorDetails,
    ErrorRow,
    FieldViolation,
    details_from_pb,
    invalid_request,
)
from fabric_jobs.v1 import job_service_pb2 as pb

_Detail = TypeVar("_Detail", bound=Message)

logger = logging.getLogger(__name__)


class JobsError(Exception):
    """The root of everything a fabric_jobs.client call raises."""


class ServiceError(JobsError):
    """The JobService answered the call with an error: Fabric's ErrorDetails, and the bad fields of a request.

    Each subclass is the exception of one row of fabric_jobs.errors.ERRORS that the JobService sends."""

    error_code: ClassVar[str] = ""
    """The Fabric error code of the subclass; empty on ServiceError itself (a code this client does not know)."""
    row: ClassVar[ErrorRow | None] = None
    """The code's row of the error table: its gRPC and HTTP statuses, whether it is retriable, what it means."""

    def __init_subclass__(cls, *, code: ErrorCode, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        row = ERROR_ROWS[code]
        if row.grpc_status is None:
            raise TypeError(f"the JobService never sends {code}: it has no exception")
        cls.error_code = code
        cls.row = row

    def __init__(
        self, details: ErrorDetails, status: grpc.StatusCode, field_violations: tuple[FieldViolation, ...] = ()
    ) -> None:
        super().__init__(details.message)
        self.details = details
        self.status = status
        self.field_violations = field_violations

    @property
    def retriable(self) -> bool:
        """Whether the service said the same call may succeed later (isPermanent false)."""
        return not self.details.is_permanent

    def __str__(self) -> str:
        return f"{self.details.error_code}: {self.details.message}"


class InvalidRequest(ServiceError, code=ErrorCode.INVALID_REQUEST):
    """A field of the request is invalid; `field_violations` names each (as the JobService names its fields)."""


class UnsupportedJobType(ServiceError, code=ErrorCode.UNSUPPORTED_JOB_TYPE):
    """The job type is not registered for the item type."""


class JobInstanceNotFound(ServiceError, code=ErrorCode.JOB_INSTANCE_NOT_FOUND):
    """No job instance has this key."""


class JobInstanceConflict(ServiceError, code=ErrorCode.JOB_INSTANCE_CONFLICT):
    """A job instance with this key exists, created by a different request (another invoke type or payload)."""


class ServiceUnavailable(ServiceError, code=ErrorCode.SERVICE_UNAVAILABLE):
    """The service cannot serve the call now (its store is unreachable); retriable."""


class InternalError(ServiceError, code=ErrorCode.INTERNAL_ERROR):
    """The service failed unexpectedly; what happened is in its logs. Retriable."""


SERVICE_ERRORS: dict[str, type[ServiceError]] = {cls.error_code: cls for cls in ServiceError.__subclasses__()}
"""The exception of each error code the JobService sends (a test checks these are the table's rows with a gRPC
status)."""

_STATUS_BY_NUMBER = {status.value[0]: status for status in grpc.StatusCode}
ROW_BY_GRPC: dict[grpc.StatusCode, ErrorRow] = {_STATUS_BY_NUMBER[code]: row for row in ERRORS for code in row.reads}
"""The row that reads each gRPC status: its HTTP status, and its code when the status comes without details."""


class TransportError(JobsError):
    """The call got no answer from a JobService: unreachable, cut off, too slow for its deadline, or the target
    is not a JobService. `status` is the gRPC status the channel reported."""

    def __init__(self, status: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{status.name}: {message}")
        self.status = status
        self.message = message

    @property
    def retriable(self) -> bool:
        """Whether trying again, maybe on another replica, may get an answer: the error table says so of the
        status (UNAVAILABLE; CANCELLED, which a stopping replica answers to the calls it had not started; ...),
        but for DEADLINE_EXCEEDED: the call's time is spent."""
        return ROW_BY_GRPC[self.status].retriable and self.status is not grpc.StatusCode.DEADLINE_EXCEEDED


class WaitTimeout(JobsError, TimeoutError):
    """wait() ran out of time; `last_state` is the job's state when it did (None if it was never read)."""

    def __init__(self, message: str, last_state: JobState | None) -> None:
        super().__init__(message)
        self.last_state = last_state


def from_rpc_error(error: grpc.aio.AioRpcError) -> ServiceError | TransportError:
    """The exception of a failed call: a ServiceError when the status carries the service's ErrorDetails (or its
    field violations, or an ErrorInfo naming an error code), else a TransportError."""
    packed = status_details(error)
    bad_request = unpack(packed, error_details_pb2.BadRequest())
    violations = (
        ()
        if bad_request is None
        else tuple(FieldViolation(v.field, v.description) for v in bad_request.field_violations)
    )
    details = unpack(packed, pb.ErrorDetails())
    if details is not None and details.error_code:
        decoded = details_from_pb(details)
    elif violations:
        decoded = invalid_request(violations)
    else:
        info = unpack(packed, error_details_pb2.ErrorInfo())
        if info is None or not info.reason:
            return TransportError(error.code(), error.details() or "")
        decoded = _from_error_info(info, error)
    return SERVICE_ERRORS.get(decoded.error_code, ServiceError)(decoded, error.code(), violations)


def _from_error_info(info: error_details_pb2.ErrorInfo, error: grpc.aio.AioRpcError) -> ErrorDetails:
    """Details from an ErrorInfo alone: its reason, as the row that reads the status says."""
    row = ROW_BY_GRPC[error.code()]
    return row.details(row.bare_message or error.details() or info.reason, code=info.reason)


def status_details(error: grpc.aio.AioRpcError) -> list[Any]:
    """The google.rpc.Status details of a failed call (packed Any messages); none when it has no valid ones."""
    try:
        status = rpc_status.from_call(cast(grpc.Call, error))
    except ValueError:
        logger.warning("the JobService sent an inconsistent google.rpc.Status", exc_info=True)
        return []
    return [] if status is None else list(status.details)


def unpack(packed: list[Any], message: _Detail) -> _Detail | None:
    """The first detail of message's type, unpacked into message."""
    for detail in packed:
        if detail.Is(message.DESCRIPTOR):
            detail.Unpack(message)
            return message
    return None
