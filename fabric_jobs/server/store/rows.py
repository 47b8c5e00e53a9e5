"""Between model values and SQL: the query parameters and the rows of job_instances, the same in every store."""

from __future__ import annotations

from typing import Any, Protocol

from fabric_jobs.errors import ErrorDetails
from fabric_jobs.identity import Caller
from fabric_jobs.keys import KEY_FIELDS
from fabric_jobs.server.model import InvokeType, JobKey, JobRecord, JobStatus, NewJob, Progress, QueuedJob, Transition
from fabric_jobs.server.store.base import JobFilter, ListQuery, SearchQuery
from fabric_jobs.server.store.error_column import error_from_column, error_to_column
from fabric_jobs.server.store.page_token import (
    BEFORE_FIRST_PAGE,
    BEFORE_FIRST_SEARCH_PAGE,
    PAGE_KEY_COLUMNS,
    SEARCH_PAGE_KEY_COLUMNS,
    PageKey,
    SearchPageKey,
    decode_page_token,
    decode_search_page_token,
)


class Row(Protocol):
    """A result row read by column name: psycopg's dict_row, sqlite3.Row."""

    def __getitem__(self, column: str, /) -> Any: ...


def key_params(key: JobKey) -> dict[str, object]:
    return {**key.fields()}


def new_job_params(job: NewJob) -> dict[str, object]:
    return {
        **key_params(job.key),
        "invoke_type": job.invoke_type.value,
        "creation_payload": job.creation_payload,
        "create_time_ms": job.create_time_ms,
        "trace_context": job.trace_context,
        "caller": None if job.caller is None else job.caller.to_json(),
        "start_deadline_ms": job.start_deadline_ms,
        "timeout_ms": job.timeout_ms,
    }


def transition_params(
    key: JobKey, new: JobStatus, at_ms: int, owner: str | None, error: ErrorDetails | None
) -> dict[str, object]:
    """The parameters of a transition query but `expected_statuses` (each dialect passes a set its own way)."""
    return {
        **key_params(key),
        "new_status": new.value,
        "at_ms": at_ms,
        "owner": owner,
        "error": None if error is None else error_to_column(error),
    }


def transition_query(new: JobStatus) -> str:
    """The name of the query that moves an instance to `new`."""
    if new is JobStatus.IN_PROGRESS:
        return "move_to_in_progress"
    return "move_to_terminal" if new.is_terminal else "move_to_not_started"


def list_params(query: ListQuery) -> dict[str, object]:
    """The parameters of list_jobs but `statuses` (each dialect passes a set its own way); one row more than a
    page is asked for, to learn whether another page follows. ValueError for a bad page size or token."""
    if query.page_size < 1:
        raise ValueError(f"page_size must be at least 1, not {query.page_size}")
    after = BEFORE_FIRST_PAGE if query.page_token is None else decode_page_token(query.page_token)
    return {
        "tenant_id": query.tenant_id,
        "workspace_id": query.workspace_id,
        "item_type": query.item_type,
        "item_id": query.item_id,
        "job_type": query.job_type,
        "limit": query.page_size + 1,
        **{f"after_{column}": value for column, value in zip(PAGE_KEY_COLUMNS, after, strict=True)},
    }


def filter_params(job_filter: JobFilter) -> dict[str, object]:
    """The parameters of search_jobs and count_jobs_by_status but `statuses` (each dialect passes a set its own
    way)."""
    return {
        "tenant_id": job_filter.tenant_id,
        "workspace_id": job_filter.workspace_id,
        "item_type": job_filter.item_type,
        "item_id": job_filter.item_id,
        "job_type": job_filter.job_type,
        "job_instance_id": job_filter.job_instance_id,
        "created_since_ms": job_filter.created_since_ms,
    }


def search_params(query: SearchQuery) -> dict[str, object]:
    """As list_params, for search_jobs."""
    if query.page_size < 1:
        raise ValueError(f"page_size must be at least 1, not {query.page_size}")
    after = BEFORE_FIRST_SEARCH_PAGE if query.page_token is None else decode_search_page_token(query.page_token)
    return {
        **filter_params(query.filter),
        "limit": query.page_size + 1,
        **{f"after_{column}": value for column, value in zip(SEARCH_PAGE_KEY_COLUMNS, after, strict=True)},
    }


def search_page_key(row: Row) -> SearchPageKey:
    create_time_ms, job_instance_id, workspace_id, item_type, item_id, job_type, tenant_id = (
        row[column] for column in SEARCH_PAGE_KEY_COLUMNS
    )
    return create_time_ms, job_instance_id, workspace_id, item_type, item_id, job_type, tenant_id


def transition_from_row(row: Row) -> Transition:
    return Transition(JobStatus(row["status"]), bool(row["cancel_requested"]), row["at_ms"])


def page_key(row: Row) -> PageKey:
    create_time_ms, job_instance_id, workspace_id, item_type, item_id, job_type = (
        row[column] for column in PAGE_KEY_COLUMNS
    )
    return create_time_ms, job_instance_id, workspace_id, item_type, item_id, job_type


def key_from_row(row: Row) -> JobKey:
    return JobKey(*(row[column] for column in KEY_FIELDS))


def record_from_row(row: Row, key: JobKey | None = None) -> JobRecord:
    """The record of a job_instances row; `key`, where the caller looked the row up by it, is used as it is."""
    return JobRecord(
        key=key_from_row(row) if key is None else key,
        status=JobStatus(row["status"]),
        invoke_type=InvokeType(row["invoke_type"]),
        creation_payload=row["creation_payload"],
        create_time_ms=row["create_time_ms"],
        start_time_ms=row["start_time_ms"],
        end_time_ms=row["end_time_ms"],
        error=None if row["error"] is None else error_from_column(row["error"]),
        cancel_requested=bool(row["cancel_requested"]),
        owner=row["owner"],
        version=row["version"],
        trace_context=row["trace_context"],
        caller=None if row["caller"] is None else Caller.from_json(row["caller"]),
        start_turn=row["start_turn"],
        progress=progress_from_row(row),
        start_deadline_ms=row["start_deadline_ms"],
        timeout_ms=row["timeout_ms"],
        run_deadline_ms=row["run_deadline_ms"],
    )


def queued_from_row(row: Row) -> QueuedJob:
    return QueuedJob(key_from_row(row), row["start_turn"])


def progress_from_row(row: Row) -> Progress | None:
    at_ms = row["progress_time_ms"]
    if at_ms is None:
        return None
    return Progress(row["progress_percent"], row["progress_message"] or "", at_ms)


def progress_params(key: JobKey, owner: str, progress: Progress) -> dict[str, object]:
    return {
        **key_params(key),
        "owner": owner,
        "percent": progress.percent,
        "message": progress.message,
        "at_ms": progress.at_ms,
    }
