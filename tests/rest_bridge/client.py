"""A REST client for the bridge whose every response is checked against Fabric's schemas."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette

from fabric_jobs import testing
from tests.harness import eventually
from tests.jobs import COMPLETES, ITEM_TYPE
from tests.rest_bridge.schemas import check_response

BASE_PATH = "/workload"
TERMINAL = frozenset({"Completed", "Failed", "Cancelled"})


@dataclass(frozen=True)
class JobRef(testing.JobRef):
    """The plugin's JobRef of a bridge test job (tests/jobs.py), with headers to override."""

    item_type: str = ITEM_TYPE
    job_type: str = COMPLETES

    def headers(self, **overrides: str | None) -> dict[str, str]:
        """Fabric's headers; an override of None leaves that header out."""
        headers: dict[str, str | None] = {**super().headers(), **overrides}
        return {name: value for name, value in headers.items() if value is not None}

    def but(self, **changes: str) -> JobRef:
        return dataclasses.replace(self, **changes)


async def _check(response: httpx.Response) -> None:
    await response.aread()
    check_response(response)


def client_for(app: Starlette, base_path: str = BASE_PATH) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=f"http://bridge{base_path}",
        event_hooks={"response": [_check]},
    )


def client_at(url: str) -> httpx.AsyncClient:
    """A client of a bridge process listening at `url`, every response checked against Fabric's schemas."""
    return httpx.AsyncClient(base_url=url, timeout=30, event_hooks={"response": [_check]})


class Bridge:
    """The Jobs calls, with valid headers unless told otherwise."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def create(
        self, job: JobRef, body: Any = None, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        if body is None and "content" not in kwargs:
            body = {"invokeType": "Manual"}
        if body is not None:
            kwargs["json"] = body
        return await self.client.post(job.path, headers=headers or job.headers(), **kwargs)

    async def get(self, job: JobRef, *, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.get(job.path, headers=headers or job.headers())

    async def cancel(self, job: JobRef, *, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post(job.path + "/cancel", headers=headers or job.headers())

    async def state(self, job: JobRef) -> dict[str, Any]:
        response = await self.get(job)
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()
        return state

    async def wait_for(self, job: JobRef, *statuses: str, within: float = 8.0) -> dict[str, Any]:
        """Poll Get (bounded) until the job has one of `statuses`."""

        async def reached() -> dict[str, Any] | None:
            state = await self.state(job)
            return state if state["status"] in statuses else None

        return await eventually(reached, within=within, what=f"job {job} reaching {' or '.join(statuses)}")
