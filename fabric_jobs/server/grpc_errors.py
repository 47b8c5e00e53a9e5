"""FabricError to gRPC status, the one place where the server maps errors: one table by error code.

The status carries google.rpc.Status details: an ErrorInfo (reason = the Fabric error code,
domain = "fabric-jobs"), the full fabric_jobs.v1.ErrorDetails, and for INVALID_ARGUMENT a
BadRequest with one field violation per bad field.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from fabric_jobs.errors import ErrorCode, FabricError, details_to_pb

DOMAIN = "fabric-jobs"

GRPC_STATUS_BY_ERROR_CODE: dict[str, grpc.StatusCode] = {
    ErrorCode.INVALID_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.UNSUPPORTED_JOB_TYPE: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.JOB_INSTANCE_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorCode.JOB_INSTANCE_CONFLICT: grpc.StatusCode.ALREADY_EXISTS,
    ErrorCode.SERVICE_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
}
"""Any other code is INTERNAL."""


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_grpc_status(err: FabricError) -> grpc.Status:
    code = GRPC_STATUS_BY_ERROR_CODE.get(err.details.error_code, grpc.StatusCode.INTERNAL)
    info = error_details_pb2.ErrorInfo(
        reason=err.details.error_code,
        domain=DOMAIN,
        metadata={"source": str(err.details.source), "isPermanent": str(err.details.is_permanent).lower()},
    )
    details = [_pack(info), _pack(details_to_pb(err.details))]
    if err.field_violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in err.field_violations
            ]
        )
        details.append(_pack(bad_request))
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=err.details.message, details=details)
    return rpc_status.to_status(status)
