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
from fabric_jobs.errors import ErrorCode, ErrorDetails, ErrorSource, FieldViolation, details_from_pb, invalid_request
from fabric_jobs.v1 import job_service_pb2 as pb

_Detail = TypeVar("_Detail", bound=Message)

logger = logging.getLogger(__name__)


class JobsError(Exception):
    """The root of everything a fabric_jobs.client call raises."""


class ServiceError(JobsError):
    """The JobService answered the call with an error: Fabric's ErrorDetails, and the bad fields of a request."""

    error_code: ClassVar[str] = ""
    """The Fabric error code of the subclass; empty on ServiceError itself (a code this client does not know)."""

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


class InvalidRequest(ServiceError):
    """A field of the request is invalid; `field_violations` names each (as the JobService names its fields)."""

    error_code = ErrorCode.INVALID_REQUEST


class UnsupportedJobType(ServiceError):
    """The job type is not registered for the item type."""

    error_code = ErrorCode.UNSUPPORTED_JOB_TYPE


class JobInstanceNotFound(ServiceError):
    """No job instance has this key."""

    error_code = ErrorCode.JOB_INSTANCE_NOT_FOUND


class JobInstanceConflict(ServiceError):
    """A job instance with this key exists, created by a different request (another invoke type or payload)."""

    error_code = ErrorCode.JOB_INSTANCE_CONFLICT


class ServiceUnavailable(ServiceError):
    """The service cannot serve the call now (its store is unreachable); retriable."""

    error_code = ErrorCode.SERVICE_UNAVAILABLE


class InternalError(ServiceError):
    """The service failed unexpectedly; what happened is in its logs. Retriable."""

    error_code = ErrorCode.INTERNAL_ERROR


SERVICE_ERRORS: dict[str, type[ServiceError]] = {cls.error_code: cls for cls in ServiceError.__subclasses__()}
"""The exception of each error code the JobService sends."""


class TransportError(JobsError):
    """The call got no answer from a JobService: unreachable, cut off, too slow for its deadline, or the target
    is not a JobService. `status` is the gRPC status the channel reported."""

    def __init__(self, status: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{status.name}: {message}")
        self.status = status
        self.message = message

    @property
    def retriable(self) -> bool:
        """Whether trying again, maybe on another replica, may get an answer: UNAVAILABLE, or CANCELLED (which a
        stopping replica answers to the calls it had not started)."""
        return self.status in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)


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
    """Details from an ErrorInfo alone: its reason, and the source and permanence the service puts in its metadata
    (without them: a system error, retriable when the status is)."""
    source = info.metadata.get("source", ErrorSource.SYSTEM)
    permanent = info.metadata.get("isPermanent")
    return ErrorDetails(
        info.reason,
        error.details() or info.reason,
        source=ErrorSource(source) if source in ErrorSource._value2member_map_ else ErrorSource.SYSTEM,
        is_permanent=permanent == "true" if permanent is not None else error.code() not in _RETRIABLE_STATUSES,
    )


_RETRIABLE_STATUSES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED}
)


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
