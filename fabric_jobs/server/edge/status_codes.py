"""FabricError to gRPC status, the one place where the server maps errors: by the rows of fabric_jobs.errors.ERRORS.

The status carries google.rpc.Status details: an ErrorInfo (reason = the Fabric error code,
domain = "fabric-jobs"), the full fabric_jobs.v1.ErrorDetails, and for INVALID_ARGUMENT a
BadRequest with one field violation per bad field.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from fabric_jobs.errors import ERRORS, ErrorCode, FabricError, details_to_pb

DOMAIN = "fabric-jobs"

GRPC_STATUS_BY_ERROR_CODE: dict[str, code_pb2.Code.ValueType] = {
    row.code: row.grpc_status for row in ERRORS if row.grpc_status is not None
}
_INTERNAL = GRPC_STATUS_BY_ERROR_CODE[ErrorCode.INTERNAL_ERROR]
"""The status of any other code, an author's included."""


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_grpc_status(err: FabricError) -> grpc.Status:
    code = GRPC_STATUS_BY_ERROR_CODE.get(err.details.error_code, _INTERNAL)
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
    status = status_pb2.Status(code=code, message=err.details.message, details=details)
    return rpc_status.to_status(status)
