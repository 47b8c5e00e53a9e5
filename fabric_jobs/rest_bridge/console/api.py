"""The console's JSON API: each endpoint one JobService or AdminService call, answered in admin_json's shape.

Filters come as query parameters: tenant, workspace, itemType, item, jobType, status (comma-separated names),
since (ISO 8601 UTC); a job is named by the six camelCase key fields. Bad input is 400 naming the parameter.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fabric_jobs.client import AdminClient, JobFilter, JobKey, JobsClient, RetryBudget, ServiceError, TransportError
from fabric_jobs.keys import NAME_RULE, UUID_RULE, is_name, is_uuid
from fabric_jobs.rest_bridge.admin_json import KEY_FIELDS, STATUS_BY_NAME, counts_json, job_json, transition_json
from fabric_jobs.rest_bridge.console.access import Tickets
from fabric_jobs.rest_bridge.console.events import EventStream
from fabric_jobs.rest_bridge.grpc_errors import from_client_error

PAGE_SIZE = 100
UUID_FILTERS = {"tenant": "tenant_id", "workspace": "workspace_id", "item": "item_id"}
NAME_FILTERS = {"itemType": "item_type", "jobType": "job_type"}


class BadParameter(Exception):
    def __init__(self, name: str, rule: str) -> None:
        super().__init__(f"{name} {rule}")
        self.name = name


def _bad(exc: BadParameter) -> Response:
    return JSONResponse({"error": str(exc), "parameter": exc.name}, status_code=400)


def _rpc_failure(exc: ServiceError | TransportError) -> Response:
    error = from_client_error(exc)
    return JSONResponse(
        {"error": error.details.message, "errorCode": error.details.error_code}, status_code=error.status_code
    )


def job_filter(params: Any, *, with_statuses: bool = True) -> JobFilter:
    fields: dict[str, Any] = {}
    for name, field in UUID_FILTERS.items():
        if value := params.get(name, "").strip():
            if not is_uuid(value):
                raise BadParameter(name, UUID_RULE)
            fields[field] = value
    for name, field in NAME_FILTERS.items():
        if value := params.get(name, "").strip():
            if not is_name(value):
                raise BadParameter(name, NAME_RULE)
            fields[field] = value
    if with_statuses and (statuses := params.get("status", "").strip()):
        for part in statuses.split(","):
            if part.strip().lower() not in STATUS_BY_NAME:
                raise BadParameter("status", f"must name statuses, not {part!r}")
        fields["statuses"] = frozenset(STATUS_BY_NAME[part.strip().lower()] for part in statuses.split(","))
    if since := params.get("since", "").strip():
        try:
            fields["created_since"] = datetime.datetime.fromisoformat(since)
        except ValueError:
            raise BadParameter("since", "must be an ISO 8601 time") from None
    return JobFilter(**fields)


def job_key(values: Any) -> JobKey:
    fields = {}
    for name, field in KEY_FIELDS.items():
        value = values.get(name, "")
        valid = is_name(value) if field in ("item_type", "job_type") else is_uuid(value)
        if not isinstance(value, str) or not valid:
            raise BadParameter(name, NAME_RULE if field in ("item_type", "job_type") else UUID_RULE)
        fields[field] = value
    return JobKey(**fields)


class ConsoleApi:
    def __init__(self, channel: grpc.aio.Channel, tickets: Tickets, timeout: float, stop: asyncio.Event) -> None:
        budget = RetryBudget()
        self._jobs = JobsClient(channel, timeout=timeout, budget=budget)
        self._admin = AdminClient(channel, timeout=timeout, budget=budget)
        self._tickets = tickets
        self._events = EventStream(self._admin, stop)

    async def jobs(self, request: Request) -> Response:
        try:
            page = await self._admin.search(
                job_filter(request.query_params),
                page_size=PAGE_SIZE,
                page_token=request.query_params.get("pageToken", ""),
            )
        except BadParameter as exc:
            return _bad(exc)
        except (ServiceError, TransportError) as exc:
            return _rpc_failure(exc)
        return JSONResponse(
            {"jobInstances": [job_json(job) for job in page.jobs], "nextPageToken": page.next_page_token or ""}
        )

    async def counts(self, request: Request) -> Response:
        try:
            counts = await self._admin.count(job_filter(request.query_params, with_statuses=False))
        except BadParameter as exc:
            return _bad(exc)
        except (ServiceError, TransportError) as exc:
            return _rpc_failure(exc)
        return JSONResponse(counts_json(counts))

    async def job(self, request: Request) -> Response:
        try:
            history = await self._admin.history(job_key(request.query_params))
        except BadParameter as exc:
            return _bad(exc)
        except (ServiceError, TransportError) as exc:
            return _rpc_failure(exc)
        return JSONResponse(
            {
                "jobInstance": job_json(history.job),
                "transitions": [transition_json(step) for step in history.transitions],
            }
        )

    async def cancel(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            if not isinstance(body, dict):
                raise BadParameter("body", "must be a JSON object naming the job")
            job = await self._jobs.cancel(job_key(body))
        except ValueError:
            return _bad(BadParameter("body", "must be JSON"))
        except BadParameter as exc:
            return _bad(exc)
        except (ServiceError, TransportError) as exc:
            return _rpc_failure(exc)
        return JSONResponse({"jobInstance": job_json(job)})

    async def ticket(self, request: Request) -> Response:
        return JSONResponse({"ticket": self._tickets.issue()})

    async def events(self, request: Request) -> Response:
        try:
            return self._events.response(job_filter(request.query_params))
        except BadParameter as exc:
            return _bad(exc)
