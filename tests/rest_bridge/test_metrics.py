"""GET /metrics: Prometheus' text format, outside the Jobs authentication, moved by real requests and jobs."""

from __future__ import annotations

import asyncio
import pathlib
import re
from typing import cast

import grpc
import httpx
from starlette.applications import Starlette

from fabric_jobs.console import ConsoleSettings, create_console_app
from fabric_jobs.rest_bridge.app import create_app
from fabric_jobs.rest_bridge.settings import BridgeSettings
from fabric_jobs.server.app import JobServer
from tests.jobs import COOPERATES, FAILS, HOLDS_THREAD, IGNORES_CANCEL, SYNC_COMPLETES
from tests.rest_bridge.client import BASE_PATH, Bridge, JobRef, client_for
from tests.rest_bridge.metrics_scrape import Scrape, scrape, scrape_until
from tests.rest_bridge.test_authenticated import authenticated_app

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
CREATE, GET, CANCEL = "Jobs_CreateItemJobInstance", "Jobs_GetItemJobInstanceState", "Jobs_CancelItemJobInstance"
GRPC_CREATE = "/fabric_jobs.v1.JobService/CreateJobInstance"
GRPC_GET = "/fabric_jobs.v1.JobService/GetJobInstance"

Wanted = list[tuple[str, dict[str, str]]]


def bridge_app(channel: grpc.aio.Channel) -> Starlette:
    return create_app(BridgeSettings(base_path=BASE_PATH, request_timeout_seconds=5.0), channel)


def moved(before: Scrape, after: Scrape, wanted: Wanted) -> list[tuple[str, dict[str, str], float]]:
    return [(name, labels, after.value(name, **labels) - before.value(name, **labels)) for name, labels in wanted]


async def test_metrics_are_served_without_credentials_in_prometheus_text_format(
    tmp_path: pathlib.Path, channel: grpc.aio.Channel
) -> None:
    metrics = await scrape(authenticated_app(tmp_path, channel))
    for family in (
        "fabric_jobs_http_requests",
        "fabric_jobs_http_request_duration_seconds",
        "fabric_jobs_grpc_server_handled",
        "fabric_jobs_grpc_server_handling_seconds",
        "fabric_jobs_jobs_created",
        "fabric_jobs_jobs_started",
        "fabric_jobs_jobs_ended",
        "fabric_jobs_handler_duration_seconds",
        "fabric_jobs_cancel_to_stop_seconds",
        "fabric_jobs_forced_stops",
        "fabric_jobs_executor_lost_jobs",
        "fabric_jobs_jobs_running",
        "fabric_jobs_jobs_waiting",
        "fabric_jobs_executor_threads_busy",
        "fabric_jobs_executor_threads_max",
        "fabric_jobs_event_loop_lag_seconds",
        "process_cpu_seconds",
        "python_gc_collections",
    ):
        assert family in metrics.families, family
    assert metrics.families["fabric_jobs_http_requests"].type == "counter"
    assert metrics.families["fabric_jobs_handler_duration_seconds"].type == "histogram"
    assert metrics.families["fabric_jobs_jobs_running"].type == "gauge"


async def test_requests_and_job_transitions_move_the_counters_and_histograms(
    job_server: JobServer, channel: grpc.aio.Channel
) -> None:
    app = bridge_app(channel)
    before = await scrape(app)
    cooperating, failing, missing = JobRef(job_type=COOPERATES), JobRef(job_type=FAILS), JobRef()
    async with client_for(app) as client:
        bridge = Bridge(client)
        assert (await bridge.create(cooperating)).status_code == 202
        assert (await bridge.create(failing)).status_code == 202
        await bridge.wait_for(cooperating, "InProgress")
        assert (await bridge.cancel(cooperating)).status_code == 200
        await bridge.wait_for(cooperating, "Cancelled")
        await bridge.wait_for(failing, "Failed")
        assert (await bridge.get(missing)).status_code == 404
    once: Wanted = [
        ("fabric_jobs_http_requests_total", {"route": CANCEL, "status_code": "200"}),
        ("fabric_jobs_http_requests_total", {"route": GET, "status_code": "404"}),
        ("fabric_jobs_http_request_duration_seconds_count", {"route": CANCEL}),
        ("fabric_jobs_grpc_server_handled_total", {"grpc_method": GRPC_GET, "grpc_code": "NOT_FOUND"}),
        ("fabric_jobs_jobs_created_total", {"job_type": COOPERATES}),
        ("fabric_jobs_jobs_started_total", {"job_type": COOPERATES}),
        ("fabric_jobs_jobs_ended_total", {"job_type": COOPERATES, "status": "Cancelled"}),
        ("fabric_jobs_jobs_ended_total", {"job_type": FAILS, "status": "Failed"}),
        ("fabric_jobs_handler_duration_seconds_count", {"job_type": COOPERATES}),
        ("fabric_jobs_cancel_to_stop_seconds_count", {"job_type": COOPERATES}),
    ]
    # The server counts a call as handled, and a handler as stopped, just after the reply the client sees.
    after = await scrape_until(app, lambda now: all(count > 0 for _, _, count in moved(before, now, once)))
    assert moved(before, after, once) == [(name, labels, 1.0) for name, labels in once]
    twice: Wanted = [
        ("fabric_jobs_http_requests_total", {"route": CREATE, "status_code": "202"}),
        ("fabric_jobs_grpc_server_handled_total", {"grpc_method": GRPC_CREATE, "grpc_code": "OK"}),
        ("fabric_jobs_grpc_server_handling_seconds_count", {"grpc_method": GRPC_CREATE}),
    ]
    assert moved(before, after, twice) == [(name, labels, 2.0) for name, labels in twice]
    assert after.value("fabric_jobs_handler_duration_seconds_sum", job_type=COOPERATES) > before.value(
        "fabric_jobs_handler_duration_seconds_sum", job_type=COOPERATES
    )

    ids = {cooperating.tenant_id, cooperating.workspace_id, cooperating.item_id, cooperating.job_instance_id}
    assert not ids & after.label_values()
    assert not [value for value in after.label_values() if UUID.search(value)]


async def test_a_handler_that_ignores_its_cancel_counts_as_a_forced_stop(job_server: JobServer) -> None:
    app = bridge_app(job_server.in_process_channel.as_channel())
    before = await scrape(app)
    job = JobRef(job_type=IGNORES_CANCEL)
    async with client_for(app) as client:
        bridge = Bridge(client)
        assert (await bridge.create(job)).status_code == 202
        await bridge.wait_for(job, "InProgress")
        await bridge.cancel(job)
        await bridge.wait_for(job, "Cancelled")
    stopped = ("fabric_jobs_cancel_to_stop_seconds_count", {"job_type": IGNORES_CANCEL})
    after = await scrape_until(app, lambda now: moved(before, now, [stopped])[0][2] > 0)
    wanted: Wanted = [
        ("fabric_jobs_forced_stops_total", {"job_type": IGNORES_CANCEL}),
        ("fabric_jobs_jobs_ended_total", {"job_type": IGNORES_CANCEL, "status": "Cancelled"}),
        ("fabric_jobs_cancel_to_stop_seconds_count", {"job_type": IGNORES_CANCEL}),
    ]
    assert moved(before, after, wanted) == [(name, labels, 1.0) for name, labels in wanted]


async def test_running_waiting_and_busy_threads_are_gauges_of_now(job_server: JobServer) -> None:
    app = bridge_app(job_server.in_process_channel.as_channel())
    idle = await scrape(app)
    holding, queued = JobRef(job_type=HOLDS_THREAD), JobRef(job_type=SYNC_COMPLETES)
    gauges = ("fabric_jobs_jobs_running", "fabric_jobs_jobs_waiting", "fabric_jobs_executor_threads_busy")
    async with client_for(app) as client:
        bridge = Bridge(client)
        assert (await bridge.create(holding)).status_code == 202
        await bridge.wait_for(holding, "InProgress")
        assert (await bridge.create(queued)).status_code == 202
        busy = await scrape(app)
        assert [busy.value(name) - idle.value(name) for name in gauges] == [1.0, 1.0, 1.0]
        assert busy.value("fabric_jobs_executor_threads_max") == 1.0
        await bridge.cancel(holding)
        await bridge.wait_for(queued, "Completed")

    def back_to_idle(now: Scrape) -> bool:
        return [now.value(name) for name in gauges] == [idle.value(name) for name in gauges]

    assert back_to_idle(await scrape_until(app, back_to_idle)), "the gauges never went back to idle"


async def test_a_job_cancelled_while_waiting_is_counted_ended_once(job_server: JobServer) -> None:
    app = bridge_app(job_server.in_process_channel.as_channel())
    holding, queued = JobRef(job_type=HOLDS_THREAD), JobRef(job_type=SYNC_COMPLETES)
    ended = ("fabric_jobs_jobs_ended_total", {"job_type": SYNC_COMPLETES, "status": "Cancelled"})
    async with client_for(app) as client:
        bridge = Bridge(client)
        await bridge.create(holding)
        await bridge.wait_for(holding, "InProgress")
        await bridge.create(queued)
        before = await scrape(app)
        for _ in range(2):
            response = await bridge.cancel(queued)
            assert response.json()["status"] == "Cancelled"
        await bridge.cancel(holding)
        await bridge.wait_for(holding, "Cancelled")
    after = await scrape_until(app, lambda now: moved(before, now, [ended])[0][2] > 0)
    assert moved(before, after, [ended]) == [(*ended, 1.0)]


async def test_no_created_series_are_exposed(channel: grpc.aio.Channel) -> None:
    metrics = await scrape(bridge_app(channel))
    created = sorted({sample.name for sample in metrics.samples if sample.name.endswith("_created")})
    assert created == [], "prometheus-client's *_created series are noise: every counter and histogram had one"


async def test_the_consoles_static_files_count_under_a_route_of_their_own(channel: grpc.aio.Channel) -> None:
    app = bridge_app(channel)
    console = create_console_app(ConsoleSettings(), channel, asyncio.Event())
    before = await scrape(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=console), base_url="http://127.0.0.1") as client:
        assert (await client.get("/console/static/console.js")).status_code == 200
        assert (await client.get("/console/static/no-such-file.js")).status_code == 404
        assert (await client.get("/console/nowhere")).status_code == 404
    after = await scrape(app)
    wanted: Wanted = [
        ("fabric_jobs_http_requests_total", {"route": "Console_static", "status_code": "200"}),
        ("fabric_jobs_http_requests_total", {"route": "Console_static", "status_code": "404"}),
        ("fabric_jobs_http_requests_total", {"route": "unmatched", "status_code": "404"}),
        ("fabric_jobs_http_requests_total", {"route": "unmatched", "status_code": "200"}),
    ]
    assert moved(before, after, wanted) == [
        (name, labels, count) for (name, labels), count in zip(wanted, (1, 1, 1, 0), strict=True)
    ]


def test_the_metrics_guide_names_every_route_label(channel: grpc.aio.Channel) -> None:
    readme = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "operating.md").read_text()
    metric_row = next(line for line in readme.splitlines() if line.startswith("| `fabric_jobs_http_requests_total` |"))
    apps = (bridge_app(channel), create_console_app(ConsoleSettings(), channel, asyncio.Event()))
    route_names = [cast(dict[object, str], app.user_middleware[0].kwargs["route_names"]) for app in apps]
    names = {name for names_of_app in route_names for name in names_of_app.values()}
    assert names
    assert [name for name in sorted(names) if f"`{name}`" not in metric_row] == []
