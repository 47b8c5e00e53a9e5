"""OpenTelemetry spans, exported to memory: the bridge's span parents the JobService's (W3C traceparent in gRPC
metadata, over both channels), and a handler's span links to the Create that queued it, however late it runs."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Iterator, Sequence

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from fabric_jobs.observability import tracing
from fabric_jobs.rest_bridge.app import create_app
from fabric_jobs.rest_bridge.settings import BridgeSettings
from fabric_jobs.server.app import JobServer, ServiceSettings, run_worker, start_job_server
from tests.conftest import wait_until
from tests.jobs import COOPERATES, HOLDS_THREAD, SYNC_COMPLETES, registry
from tests.rest_bridge.client import BASE_PATH, Bridge, JobRef, client_for

CREATE_CALL = "fabric_jobs.v1.JobService/CreateJobInstance"
CANCEL_CALL = "fabric_jobs.v1.JobService/CancelJobInstance"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    try:
        yield exporter
    finally:
        tracing.use_provider(None)
        provider.shutdown()


def bridge_for(channel: grpc.aio.Channel) -> Bridge:
    return Bridge(client_for(create_app(BridgeSettings(base_path=BASE_PATH, request_timeout_seconds=5.0), channel)))


def one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, [span.name for span in spans]
    return found[0]


def attribute(span: ReadableSpan, name: str) -> object:
    assert span.attributes is not None
    return span.attributes.get(name)


async def test_a_rest_cancel_gives_a_bridge_span_that_parents_the_job_service_span(
    spans: InMemorySpanExporter, channel: grpc.aio.Channel
) -> None:
    bridge = bridge_for(channel)
    job = JobRef(job_type=COOPERATES)
    async with bridge.client:
        await bridge.create(job)
        await bridge.wait_for(job, "InProgress")
        spans.clear()
        response = await bridge.cancel(job, headers=job.headers(ActivityId="activity-7", RequestId="request-7"))
        assert response.status_code == 200
    finished = spans.get_finished_spans()
    rest = one(finished, "POST Jobs_CancelItemJobInstance")
    call = one(finished, CANCEL_CALL)
    assert (rest.kind, call.kind) == (SpanKind.SERVER, SpanKind.SERVER)
    assert rest.context is not None
    assert call.context is not None
    assert call.parent is not None
    assert call.parent.span_id == rest.context.span_id
    assert call.context.trace_id == rest.context.trace_id
    for span in (rest, call):
        assert attribute(span, "fabric.activity_id") == "activity-7"
        assert attribute(span, "fabric.request_id") == "request-7"
        assert attribute(span, "fabric.tenant_id") == job.tenant_id
    assert attribute(call, "fabric.job") == job.path.replace("/workspaces/", "").replace("/items/", "/").replace(
        "/jobTypes/", "/"
    ).replace("/instances/", "/")


def handler_span_of(spans: Sequence[ReadableSpan], job: JobRef) -> ReadableSpan:
    return one(spans, f"job {job.item_type}/{job.job_type}")


def assert_linked_to_create(
    spans: Sequence[ReadableSpan], job: JobRef, activity_id: str, *, handler_knows_activity: bool = True
) -> None:
    """The handler's span links to the Create's; the ActivityId is on the Create's span, and on the handler's
    while the handler runs in the context the Create queued it in (not after a restart: only the trace context is
    kept with the job)."""
    create = one(spans, CREATE_CALL)
    handler = handler_span_of(spans, job)
    assert create.context is not None
    assert [link.context.span_id for link in handler.links] == [create.context.span_id]
    assert [link.context.trace_id for link in handler.links] == [create.context.trace_id]
    assert handler.kind is SpanKind.CONSUMER
    assert attribute(create, "fabric.activity_id") == activity_id
    assert attribute(handler, "fabric.activity_id") == (activity_id if handler_knows_activity else "")
    assert attribute(handler, "fabric.tenant_id") == job.tenant_id


async def test_a_handler_span_is_linked_to_the_create_that_queued_it(
    spans: InMemorySpanExporter, job_server: JobServer
) -> None:
    bridge = bridge_for(job_server.in_process_channel.as_channel())
    job = JobRef(job_type=SYNC_COMPLETES)
    async with bridge.client:
        await bridge.create(job, headers=job.headers(ActivityId="activity-8"))
        await bridge.wait_for(job, "Completed")
    await wait_for_span(spans, f"job {job.item_type}/{job.job_type}")
    assert_linked_to_create(spans.get_finished_spans(), job, "activity-8")


async def wait_for_span(spans: InMemorySpanExporter, name: str) -> None:
    await wait_until(lambda: any(span.name == name for span in spans.get_finished_spans()), what=f"a span {name}")


async def test_a_handler_run_by_the_next_server_after_a_restart_is_linked_to_its_create(
    spans: InMemorySpanExporter, tmp_path: pathlib.Path
) -> None:
    settings = ServiceSettings(
        database="sqlite:///" + str(tmp_path / "jobs.db"), cancel_grace=0.5, shutdown_grace=0.2, max_threads=1
    )
    first = await start_job_server(settings, registry)
    holding, queued = JobRef(job_type=HOLDS_THREAD), JobRef(job_type=SYNC_COMPLETES)
    try:
        bridge = bridge_for(first.in_process_channel.as_channel())
        async with bridge.client:
            await bridge.create(holding)
            await bridge.wait_for(holding, "InProgress")
            await bridge.create(queued, headers=queued.headers(ActivityId="activity-9"))
            assert (await bridge.state(queued))["status"] == "NotStarted"
    finally:
        await first.stop(0)
    created = [span for span in spans.get_finished_spans() if span.name == CREATE_CALL][-1]
    spans.clear()
    spans.export([created])

    second = await start_job_server(settings, registry)
    try:
        bridge = bridge_for(second.in_process_channel.as_channel())
        async with bridge.client:
            await bridge.wait_for(queued, "Completed")
        await wait_for_span(spans, f"job {queued.item_type}/{queued.job_type}")
    finally:
        await second.stop(0)
    assert_linked_to_create(spans.get_finished_spans(), queued, "activity-9", handler_knows_activity=False)


async def test_a_handler_run_by_a_procrastinate_worker_is_linked_to_its_create(
    spans: InMemorySpanExporter, postgres_url: str
) -> None:
    settings = ServiceSettings(database=postgres_url, cancel_grace=0.5, shutdown_grace=0.5, lease_seconds=2.0)
    replica = await start_job_server(settings, registry, run_handlers=False)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, registry, stop))
    job = JobRef(job_type=SYNC_COMPLETES)
    try:
        async with grpc.aio.insecure_channel(replica.address) as channel:
            bridge = bridge_for(channel)
            async with bridge.client:
                await bridge.create(job, headers=job.headers(ActivityId="activity-10"))
                await bridge.wait_for(job, "Completed")
        await wait_for_span(spans, f"job {job.item_type}/{job.job_type}")
    finally:
        stop.set()
        await worker
        await replica.stop(0)
    assert_linked_to_create(spans.get_finished_spans(), job, "activity-10")
