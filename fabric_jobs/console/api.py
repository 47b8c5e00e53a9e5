"""The console's JSON API: each endpoint one JobService or AdminService call, answered in admin_json's shape.

Filters come as query parameters: tenant, workspace, itemType, item, jobType, status (comma-separated names),
since (ISO 8601 UTC); a job is named by the six camelCase key fields. Bad input is 400 naming the parameter.
Errors are raised, and answered as Fabric's ErrorResponse by the app's exception handlers (console.app).
"""

from __future__ import annotations

import asyncio
import datetime
import json
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fabric_jobs.admin_json import STATUS_BY_NAME, counts_json, job_json, transition_json
from fabric_jobs.client import AdminClient, JobFilter, JobKey, JobsClient, RetryBudget
from fabric_jobs.console.access import Tickets
from fabric_jobs.console.events import EventStream
from fabric_jobs.errors import FieldViolation, invalid_request
from fabric_jobs.keys import FILTER_PARTS, KEY_PARTS
from fabric_jobs.rest_bridge.errors import HttpError

PAGE_SIZE = 100


class BadParameter(HttpError):
    """400 InvalidRequest naming one parameter."""

    def __init__(self, name: str, rule: str) -> None:
        super().__init__(400, invalid_request([FieldViolation(name, rule)]))


def job_filter(params: Any, *, with_statuses: bool = True) -> JobFilter:
    fields: dict[str, Any] = {}
    for part in FILTER_PARTS:
        assert part.filter_name is not None
        if value := params.get(part.filter_name, "").strip():
            if not part.rule.holds(value):
                raise BadParameter(part.filter_name, part.rule.text)
            fields[part.field] = value
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
    for part in KEY_PARTS:
        value = values.get(part.json_name, "")
        if not isinstance(value, str) or not part.rule.holds(value):
            raise BadParameter(part.json_name, part.rule.text)
        fields[part.field] = value
    return JobKey(**fields)


class ConsoleApi:
    def __init__(self, channel: grpc.aio.Channel, tickets: Tickets, timeout: float, stop: asyncio.Event) -> None:
        budget = RetryBudget()
        self._jobs = JobsClient(channel, timeout=timeout, budget=budget)
        self._admin = AdminClient(channel, timeout=timeout, budget=budget)
        self._tickets = tickets
        self._events = EventStream(self._admin, stop)

    async def jobs(self, request: Request) -> Response:
        page = await self._admin.search(
            job_filter(request.query_params), page_size=PAGE_SIZE, page_token=request.query_params.get("pageToken")
        )
        return JSONResponse(
            {"jobInstances": [job_json(job) for job in page.jobs], "nextPageToken": page.next_page_token or ""}
        )

    async def counts(self, request: Request) -> Response:
        counts = await self._admin.count(job_filter(request.query_params, with_statuses=False))
        return JSONResponse(counts_json(counts))

    async def job(self, request: Request) -> Response:
        history = await self._admin.history(job_key(request.query_params))
        return JSONResponse(
            {
                "jobInstance": job_json(history.job),
                "transitions": [transition_json(step) for step in history.transitions],
            }
        )

    async def cancel(self, request: Request) -> Response:
        body = await self._json_object(request, "a JSON object naming the job")
        job = await self._jobs.cancel(job_key(body))
        return JSONResponse({"jobInstance": job_json(job)})

    async def cancel_all(self, request: Request) -> Response:
        """Cancel every job not ended the filters cover (statuses aside; sent as a JSON object of the query
        parameters' names and values); they must name a workspace or an item."""
        body = await self._json_object(request, "a JSON object of filters")
        if not all(isinstance(value, str) for value in body.values()):
            raise BadParameter("body", "must be a JSON object of filters whose values are strings")
        covered = job_filter(body, with_statuses=False)
        if not (covered.workspace_id or covered.item_id):
            raise BadParameter("workspace", "a workspace or an item is required to cancel every job not ended")
        done = await self._admin.cancel_all(covered)
        return JSONResponse({"asked": done.asked, "ended": done.ended})

    @staticmethod
    async def _json_object(request: Request, what: str) -> dict[str, Any]:
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise BadParameter("body", "must be JSON") from None
        if not isinstance(body, dict):
            raise BadParameter("body", f"must be {what}")
        return body

    async def ticket(self, request: Request) -> Response:
        return JSONResponse({"ticket": self._tickets.issue()})

    async def events(self, request: Request) -> Response:
        return self._events.response(job_filter(request.query_params))
