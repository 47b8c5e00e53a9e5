"""Validation of the HTTP surface: path, headers and the Create body. Each rejection names what was wrong.

The Create body is read as Fabric evolves it: properties this workload does not know are passed over (and
reported in `CreateBody.unknown_properties`), and an invokeType string or number it does not know is taken as
UnknownFutureValue, the contract's own value for it. ActivityId and RequestId may be absent (the middleware then
makes them); the tenant header and the path stay required."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fabric_jobs import payload
from fabric_jobs.errors import ErrorCode, FieldViolation
from fabric_jobs.keys import PATH_PARTS, TENANT
from fabric_jobs.request_context import MAX_ID_LENGTH
from fabric_jobs.rest_bridge.errors import bad_request, http_error
from fabric_jobs.v1 import job_service_pb2 as pb

ACTIVITY_ID_HEADER = "ActivityId"
REQUEST_ID_HEADER = "RequestId"
TENANT_HEADER = "x-ms-client-tenant-id"
AUTHORIZATION_HEADER = "Authorization"

INVOKE_TYPES: dict[str | float, pb.JobInvokeType.ValueType] = {
    "UnknownFutureValue": pb.JOB_INVOKE_TYPE_UNKNOWN_FUTURE_VALUE,
    "Scheduled": pb.JOB_INVOKE_TYPE_SCHEDULED,
    "Manual": pb.JOB_INVOKE_TYPE_MANUAL,
    0: pb.JOB_INVOKE_TYPE_UNKNOWN_FUTURE_VALUE,
    1: pb.JOB_INVOKE_TYPE_SCHEDULED,
    2: pb.JOB_INVOKE_TYPE_MANUAL,
}
_INVOKE_TYPES_TEXT = '"UnknownFutureValue", "Scheduled", "Manual" or 0, 1, 2'
_INVOKE_TYPE_KINDS_TEXT = (
    f"a string or a number: {_INVOKE_TYPES_TEXT} (any other string or number is taken as UnknownFutureValue)"
)
_BODY_FIELDS = frozenset({"invokeType", "creationPayload"})
_JSON_MEDIA_TYPE = re.compile(r"application/(?:[\w.+-]+\+)?json", re.IGNORECASE)


@dataclass(frozen=True)
class CreateBody:
    invoke_type: pb.JobInvokeType.ValueType
    creation_payload_json: str | None
    unknown_properties: tuple[str, ...] = ()
    """Properties of the body this workload does not know, passed over (printable, sorted)."""
    unknown_invoke_type: str | None = None
    """The invokeType as sent (JSON text) when it is none of the contract's values: taken as UnknownFutureValue."""


def job_key(path_params: Mapping[str, Any], headers: Mapping[str, str]) -> pb.JobInstanceKey:
    """The job's key from its path and the tenant header, or a 400 naming every bad path parameter and header."""
    violations: list[FieldViolation] = []
    path = {part.field: str(path_params[part.json_name]) for part in PATH_PARTS}
    for part in PATH_PARTS:
        if not part.rule.holds(path[part.field]):
            violations.append(FieldViolation(part.json_name, f"path parameter {part.json_name} {part.rule.text}"))
    if not headers.get(TENANT_HEADER, "").strip():
        violations.append(FieldViolation(TENANT_HEADER, f"header {TENANT_HEADER} is required"))
    for name in (ACTIVITY_ID_HEADER, REQUEST_ID_HEADER):
        if len(headers.get(name, "").strip()) > MAX_ID_LENGTH:
            violations.append(FieldViolation(name, f"header {name} is longer than {MAX_ID_LENGTH} characters"))
    tenant = headers.get(TENANT_HEADER, "").strip()
    if tenant and not TENANT.rule.holds(tenant):
        violations.append(FieldViolation(TENANT_HEADER, f"header {TENANT_HEADER} {TENANT.rule.text}"))
    if violations:
        raise bad_request(violations)
    return pb.JobInstanceKey(tenant_id=tenant, **path)


def require_json_content_type(content_type: str | None) -> None:
    """415 unless the body is declared JSON (an absent Content-Type is taken as JSON)."""
    if content_type is None or not content_type.strip():
        return
    media_type = content_type.split(";", 1)[0].strip()
    if _JSON_MEDIA_TYPE.fullmatch(media_type) is None:
        raise http_error(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"Content-Type {media_type!r} is not supported; send application/json",
            ("Content-Type",),
        )


def parse_create_body(raw: bytes) -> CreateBody:
    """Fabric's CreateItemJobInstanceRequest, or a 400 naming what was wrong."""
    if not raw.strip():
        raise bad_request([FieldViolation("body", "a JSON body with invokeType is required")])
    try:
        body = payload.loads(raw)
    except (ValueError, RecursionError):
        raise bad_request([FieldViolation("body", "the body is not valid JSON")]) from None
    if not isinstance(body, dict):
        raise bad_request([FieldViolation("body", "the body must be a JSON object")])
    violations: list[FieldViolation] = []
    unknown = tuple(sorted(_printable(key) for key in body.keys() - _BODY_FIELDS))
    invoke_type, unknown_invoke_type = _invoke_type(body, violations)
    creation_payload_json = _creation_payload_json(body.get("creationPayload"), violations)
    if violations or invoke_type is None:
        raise bad_request(violations)
    return CreateBody(invoke_type, creation_payload_json, unknown, unknown_invoke_type)


def _invoke_type(
    body: dict[str, Any], violations: list[FieldViolation]
) -> tuple[pb.JobInvokeType.ValueType | None, str | None]:
    """The invoke type, and the value as sent when it is not one of the contract's (taken as UnknownFutureValue)."""
    if "invokeType" not in body:
        violations.append(FieldViolation("invokeType", f"invokeType is required: {_INVOKE_TYPES_TEXT}"))
        return None, None
    value = body["invokeType"]
    if isinstance(value, bool) or not isinstance(value, (str, int, float, payload.OversizedNumber)):
        violations.append(FieldViolation("invokeType", f"invokeType must be {_INVOKE_TYPE_KINDS_TEXT}"))
        return None, None
    known = None if isinstance(value, payload.OversizedNumber) else INVOKE_TYPES.get(value)  # 1.0 is 1
    if known is not None:
        return known, None
    return pb.JOB_INVOKE_TYPE_UNKNOWN_FUTURE_VALUE, _sent_as(value)


def _sent_as(value: str | float | payload.OversizedNumber) -> str:
    """An unknown invokeType as JSON text, for a log line: at most 64 characters, printable."""
    if isinstance(value, payload.OversizedNumber) or (isinstance(value, float) and not math.isfinite(value)):
        return "<a number too large>"
    text = _printable(json.dumps(value, ensure_ascii=False))
    return text if len(text) <= 64 else text[:61] + "..."


def _creation_payload_json(value: object, violations: list[FieldViolation]) -> str | None:
    """The payload re-written as compact JSON: the same keys in the same order, the same numbers and text."""
    if value is None:
        return None
    reason = payload.problem(value)
    if reason is not None:
        violations.append(FieldViolation("creationPayload", f"creationPayload {reason}"))
        return None
    assert isinstance(value, dict)
    return payload.to_text(value)


def _printable(text: str) -> str:
    """`text` with each lone surrogate (valid in JSON escapes, not in Unicode) replaced by U+FFFD."""
    return "".join("\ufffd" if 0xD800 <= ord(char) <= 0xDFFF else char for char in text)
