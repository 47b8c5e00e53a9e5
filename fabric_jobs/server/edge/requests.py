"""Checks of incoming requests; every bad field is named in one INVALID_ARGUMENT error."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from google.protobuf import json_format

from fabric_jobs import payload
from fabric_jobs.errors import FieldViolation, invalid_argument
from fabric_jobs.identity import Caller
from fabric_jobs.keys import FILTER_PARTS, KEY_PARTS, UUID, KeyPart, Rule
from fabric_jobs.server.edge.convert import INVOKE_TYPE_FROM_PB, STATUS_FROM_PB
from fabric_jobs.server.lifecycle.retention import PurgeRequest
from fabric_jobs.server.model import TERMINAL_STATUSES, CreationPayload, InvokeType, JobKey, JobStatus
from fabric_jobs.server.store import ListQuery
from fabric_jobs.server.store.base import JobFilter, SearchQuery
from fabric_jobs.v1 import admin_service_pb2 as admin_pb
from fabric_jobs.v1 import job_service_pb2 as pb

MAX_PAGE_SIZE = 1000
MAX_ASSERTION_CHARS = 16384
DEFAULT_PAGE_SIZE = 100


class _Checker:
    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def key_part(self, field: str, part: KeyPart, value: str, *, required: bool = True) -> str:
        """`value` as the store keeps it (UUIDs in lower case); a violation of `field` when it breaks the rule."""
        return self.following(field, part.rule, value, required=required)

    def following(self, field: str, rule: Rule, value: str, *, required: bool = True) -> str:
        """`value` in the rule's one spelling; a violation of `field` when it breaks the rule."""
        if not value:
            if required:
                self.violations.append(FieldViolation(field, "is required"))
            return value
        if not rule.holds(value):
            self.violations.append(
                FieldViolation(field, f"{rule.text}, got {value[:64]!r}" if rule.is_uuid else rule.text)
            )
            return value
        return rule.canonical(value)

    def raise_if_any(self) -> None:
        if self.violations:
            raise invalid_argument(self.violations)


def _key(check: _Checker, message: pb.JobInstanceKey, has_key: bool) -> JobKey:
    if not has_key:
        check.violations.append(FieldViolation("key", "is required"))
    return JobKey(*(check.key_part(f"key.{part.field}", part, getattr(message, part.field)) for part in KEY_PARTS))


def job_key(
    request: pb.GetJobInstanceRequest
    | pb.CancelJobInstanceRequest
    | pb.WatchJobInstanceRequest
    | admin_pb.ListJobInstanceTransitionsRequest,
) -> JobKey:
    check = _Checker()
    key = _key(check, request.key, request.HasField("key"))
    check.raise_if_any()
    return key


@dataclass(frozen=True)
class OnBehalfOf:
    """Who a Create is for, and their token, when it carries them."""

    caller: Caller | None = None
    assertion: str | None = field(default=None, repr=False)


def create_request(request: pb.CreateJobInstanceRequest) -> tuple[JobKey, InvokeType, CreationPayload, OnBehalfOf]:
    check = _Checker()
    key = _key(check, request.key, request.HasField("key"))
    invoke_type = _invoke_type(check, request.invoke_type)
    creation_payload = _creation_payload(check, request)
    on_behalf_of = _on_behalf_of(check, request)
    check.raise_if_any()
    assert invoke_type is not None
    return key, invoke_type, creation_payload, on_behalf_of


def _invoke_type(check: _Checker, value: int) -> InvokeType | None:
    """A value this service does not know (a newer client's) is UNKNOWN_FUTURE_VALUE, as over REST; unset is not."""
    if value == pb.JOB_INVOKE_TYPE_UNSPECIFIED:
        check.violations.append(FieldViolation("invoke_type", "is required: UNKNOWN_FUTURE_VALUE, SCHEDULED or MANUAL"))
        return None
    known: InvokeType | None = INVOKE_TYPE_FROM_PB.get(value)  # type: ignore[call-overload]
    return InvokeType.UNKNOWN_FUTURE_VALUE if known is None else known


def _on_behalf_of(check: _Checker, request: pb.CreateJobInstanceRequest) -> OnBehalfOf:
    """The caller as given, else from the assertion's claims (the JobService's callers validated it). Never echoes
    the assertion."""
    assertion = request.user_assertion or None
    if assertion is not None and len(assertion) > MAX_ASSERTION_CHARS:
        check.violations.append(FieldViolation("user_assertion", f"is longer than {MAX_ASSERTION_CHARS} characters"))
        return OnBehalfOf()
    if request.HasField("caller"):
        given = request.caller
        caller = Caller(
            tenant_id=check.following("caller.tenant_id", UUID, given.tenant_id),
            object_id=check.following("caller.object_id", UUID, given.object_id),
            user_principal_name=given.user_principal_name or None,
            app_id=check.following("caller.app_id", UUID, given.app_id),
        )
        return OnBehalfOf(caller, assertion)
    if assertion is None:
        return OnBehalfOf()
    try:
        return OnBehalfOf(Caller.from_assertion(assertion), assertion)
    except ValueError:
        check.violations.append(FieldViolation("user_assertion", "is not a JWT"))
        return OnBehalfOf()


def _creation_payload(check: _Checker, request: pb.CreateJobInstanceRequest) -> CreationPayload:
    """From creation_payload_json, or from the deprecated Struct (whose numbers are all doubles)."""
    has_struct = request.HasField("creation_payload")
    if request.creation_payload_json and has_struct:
        check.violations.append(
            FieldViolation("creation_payload", "is deprecated: set creation_payload_json only, not both")
        )
    elif has_struct:
        try:
            fields = json_format.MessageToDict(request.creation_payload)
            return CreationPayload(fields, payload.to_text(fields), "creation_payload")
        except ValueError:
            check.violations.append(FieldViolation("creation_payload", "must be JSON: numbers must be finite"))
    elif request.creation_payload_json:
        try:
            fields = payload.parse_object(request.creation_payload_json)
            return CreationPayload(fields, payload.to_text(fields), "creation_payload_json")
        except ValueError as exc:
            check.violations.append(FieldViolation("creation_payload_json", str(exc)))
    return CreationPayload({}, "{}", "creation_payload_json")


def list_query(request: pb.ListJobInstancesRequest) -> ListQuery:
    check = _Checker()
    tenant_id, workspace_id, item_type, item_id, job_type = (
        check.key_part(part.field, part, getattr(request, part.field), required=part.field == "tenant_id")
        for part in FILTER_PARTS
    )
    statuses = _statuses(check, "statuses", request.statuses)
    if not 0 <= request.page_size <= MAX_PAGE_SIZE:
        check.violations.append(FieldViolation("page_size", f"must be between 0 and {MAX_PAGE_SIZE}"))
    check.raise_if_any()
    return ListQuery(
        tenant_id=tenant_id,
        workspace_id=workspace_id or None,
        item_type=item_type or None,
        item_id=item_id or None,
        job_type=job_type or None,
        statuses=frozenset(statuses),
        page_size=request.page_size or DEFAULT_PAGE_SIZE,
        page_token=request.page_token or None,
    )


def _statuses(check: _Checker, field: str, values: Iterable[int]) -> frozenset[JobStatus]:
    statuses: set[JobStatus] = set()
    for value in values:
        status = STATUS_FROM_PB.get(value)  # type: ignore[call-overload]
        if status is None:
            check.violations.append(FieldViolation(field, f"unknown status {value}"))
        else:
            statuses.add(status)
    return frozenset(statuses)


def _filter(check: _Checker, message: admin_pb.JobInstanceFilter) -> JobFilter:
    created_since_ms = None
    if message.HasField("created_since"):
        created_since_ms = message.created_since.ToMilliseconds()
    tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id = (
        check.key_part(f"filter.{part.field}", part, getattr(message, part.field), required=False) or None
        for part in KEY_PARTS
    )
    return JobFilter(
        tenant_id=tenant_id,
        workspace_id=workspace_id,
        item_type=item_type,
        item_id=item_id,
        job_type=job_type,
        job_instance_id=job_instance_id,
        statuses=_statuses(check, "filter.statuses", message.statuses),
        created_since_ms=created_since_ms,
    )


def job_filter(request: admin_pb.CountJobInstancesRequest | admin_pb.WatchJobInstanceChangesRequest) -> JobFilter:
    check = _Checker()
    result = _filter(check, request.filter)
    check.raise_if_any()
    return result


def purge_request(request: admin_pb.PurgeJobInstancesRequest) -> PurgeRequest:
    """Statuses among the terminal ones; older_than present and not negative."""
    check = _Checker()
    result = _filter(check, request.filter)
    if not result.statuses <= TERMINAL_STATUSES:
        check.violations.append(FieldViolation("filter.statuses", "must be among COMPLETED, FAILED and CANCELLED"))
    older_than_ms = request.older_than.ToMilliseconds()
    if not request.HasField("older_than"):
        check.violations.append(FieldViolation("older_than", "is required (0s purges every ended job)"))
    elif older_than_ms < 0:
        check.violations.append(FieldViolation("older_than", "must not be negative"))
    check.raise_if_any()
    return PurgeRequest(result, older_than_ms, request.dry_run)


def cancel_filter(request: admin_pb.CancelJobInstancesRequest) -> JobFilter:
    """A workspace or an item named (nobody cancels every job by accident); statuses among the ones not ended."""
    check = _Checker()
    result = _filter(check, request.filter)
    if result.workspace_id is None and result.item_id is None and not check.violations:
        check.violations.append(
            FieldViolation("filter", "must name a workspace_id or an item_id: a cancel of every job is refused")
        )
    if result.statuses & TERMINAL_STATUSES:
        check.violations.append(FieldViolation("filter.statuses", "must be among NOT_STARTED and IN_PROGRESS"))
    check.raise_if_any()
    return result


def search_query(request: admin_pb.SearchJobInstancesRequest) -> SearchQuery:
    check = _Checker()
    result = _filter(check, request.filter)
    if not 0 <= request.page_size <= MAX_PAGE_SIZE:
        check.violations.append(FieldViolation("page_size", f"must be between 0 and {MAX_PAGE_SIZE}"))
    check.raise_if_any()
    return SearchQuery(result, request.page_size or DEFAULT_PAGE_SIZE, request.page_token or None)
