"""Retries of what is safe to retry, under the budget; ActivityId, RequestId and the trace context on every call;
and a replica that stops: the calls go on against the other, a wait() whose Watch breaks still ends."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from fabric_jobs import request_context
from fabric_jobs.client import (
    JobInstanceNotFound,
    JobsClient,
    JobStatus,
    RetryBudget,
    RetryPolicy,
    ServiceUnavailable,
    TransportError,
)
from tests import jobs
from tests.client.conftest import FAST_RETRIES, Backend, new_key
from tests.client.proxy import Failure, Proxy
from tests.conftest import RunningServer, wait_until

WAIT = 20.0
GET = "GetJobInstance"
CREATE = "CreateJobInstance"


@pytest.fixture
async def proxy(running_server: RunningServer) -> AsyncIterator[Proxy]:
    """A proxy before the backend's JobService."""
    async with grpc.aio.insecure_channel(running_server.server.address) as upstream:
        started = await Proxy(upstream).start()
        try:
            yield started
        finally:
            await started.stop()


def client_of(
    proxy: Proxy, rng: random.Random, retry: RetryPolicy = FAST_RETRIES, budget: RetryBudget | None = None
) -> JobsClient:
    return JobsClient.connect(proxy.address, retry=retry, budget=budget, rng=rng)


async def test_unavailable_a_few_times_then_an_answer(proxy: Proxy, rng: random.Random) -> None:
    key = new_key()
    async with client_of(proxy, rng) as client:
        await client.create(key)
        proxy.fail(GET, Failure.UNAVAILABLE, Failure.SERVICE_UNAVAILABLE, Failure.UNAVAILABLE)
        state = await client.get(key, activity_id="activity-1")
    assert state.key == key
    attempts = proxy.attempts(GET)
    assert len(attempts) == 4
    assert {metadata["request-id"] for metadata in attempts} == {attempts[0]["request-id"]}
    assert {metadata["activity-id"] for metadata in attempts} == {"activity-1"}


async def test_an_answer_that_is_not_retriable_is_not_retried(proxy: Proxy, rng: random.Random) -> None:
    async with client_of(proxy, rng) as client:
        with pytest.raises(JobInstanceNotFound):
            await client.get(new_key())
    assert len(proxy.attempts(GET)) == 1


async def test_retries_stop_when_the_policy_or_the_budget_runs_out(proxy: Proxy, rng: random.Random) -> None:
    proxy.fail_always(GET, Failure.SERVICE_UNAVAILABLE)
    budget = RetryBudget(max_tokens=6, token_ratio=0.5)
    async with client_of(proxy, rng, budget=budget, retry=RetryPolicy(max_attempts=3, initial_backoff=0.01)) as client:
        with pytest.raises(ServiceUnavailable):
            await client.get(new_key())
        assert len(proxy.attempts(GET)) == 3, "the policy's three attempts, the budget still above half"
        with pytest.raises(ServiceUnavailable):
            await client.get(new_key())
        assert len(proxy.attempts(GET)) == 4, "two tokens left, not above half: no retry"
        with pytest.raises(ServiceUnavailable):
            await client.get(new_key())
        assert len(proxy.attempts(GET)) == 5
        assert budget.tokens == 1
        proxy.heal()
        key = new_key()
        await client.create(key)
        for _ in range(7):
            await client.get(key)
        assert budget.tokens == 5
        proxy.fail(GET, Failure.UNAVAILABLE)
        await client.get(key)
    assert len(proxy.attempts(GET)) == 5 + 7 + 2, "successes refilled the budget above half: retried again"


async def test_a_create_whose_answer_was_lost_is_retried_and_creates_once(
    proxy: Proxy, rng: random.Random, running_server: RunningServer
) -> None:
    key = new_key(jobs.QUICK)
    proxy.fail(CREATE, Failure.LOST_ANSWER)
    async with client_of(proxy, rng) as client:
        created = await client.create(key, payload={"delaySeconds": 0})
        assert not created.created, "the first attempt created it; the retry found it"
        assert (await client.wait(key, timeout=WAIT)).status is JobStatus.COMPLETED
        page = await client.list(key.tenant_id)
    assert len(proxy.attempts(CREATE)) == 2
    assert [job.key for job in page.jobs] == [key]


async def test_ids_are_passed_through_or_generated_and_the_trace_context_sent(proxy: Proxy, rng: random.Random) -> None:
    key = new_key()
    provider = TracerProvider()
    async with client_of(proxy, rng) as client:
        await client.create(key)
        with request_context.bound("inbound-activity", "inbound-request"):
            await client.get(key)
        with provider.get_tracer("test").start_as_current_span("caller") as span:
            await client.get(key, activity_id="mine", request_id="mine-too")
        await client.get(key)
    created, inbound, traced, fresh = [*proxy.attempts(CREATE), *proxy.attempts(GET)]
    for metadata in (created, fresh):
        uuid.UUID(metadata["activity-id"])
        uuid.UUID(metadata["request-id"])
        assert "traceparent" not in metadata
    assert created["request-id"] != fresh["request-id"]
    assert (inbound["activity-id"], inbound["request-id"]) == ("inbound-activity", "inbound-request")
    assert (traced["activity-id"], traced["request-id"]) == ("mine", "mine-too")
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert traced["traceparent"].split("-")[1] == trace_id
    provider.shutdown()
    assert not trace.get_current_span().get_span_context().is_valid


async def test_a_replica_stopped_mid_run_leaves_the_calls_to_the_other(backend: Backend, rng: random.Random) -> None:
    replicas = [await backend.start_server() for _ in "ab"]
    if backend.start_worker is not None:
        await backend.start_worker()
    try:
        target = "ipv4:" + ",".join(replica.server.address for replica in replicas)
        keys = []
        async with JobsClient.connect(target, retry=FAST_RETRIES, rng=rng) as client:
            for round_ in range(20):
                if round_ == 10:
                    await replicas[0].stop()
                key = new_key(jobs.QUICK)
                await client.create(key)
                keys.append(key)
                assert (await client.get(key)).key == key
            async with JobsClient(replicas[1].channel) as survivor:
                states = [await survivor.get(key) for key in keys]
    finally:
        for replica in replicas:
            await replica.stop()
    assert [state.key for state in states] == keys


async def test_wait_survives_a_watch_whose_replica_stopped(backend: Backend, rng: random.Random) -> None:
    replicas = [await backend.start_server() for _ in "ab"]
    if backend.start_worker is not None:
        await backend.start_worker()
    upstreams = [grpc.aio.insecure_channel(replica.server.address) for replica in replicas]
    proxies = [await Proxy(upstream).start() for upstream in upstreams]
    key = new_key(jobs.COOPERATES)
    try:
        async with JobsClient.connect(
            "ipv4:" + ",".join(proxy.address for proxy in proxies), retry=FAST_RETRIES, rng=rng
        ) as client:
            await client.create(key)
            waiting = asyncio.ensure_future(client.wait(key, timeout=WAIT, poll_interval=0.05))
            await wait_until(lambda: sum(proxy.watches for proxy in proxies) == 1, what="a Watch through a proxy")
            watched, other = proxies if proxies[0].watches else reversed(proxies)
            await watched.stop()
            if backend.start_worker is not None:
                await replicas[proxies.index(watched)].stop()
            calls_before = len(other.calls)
            assert not waiting.done()
            async with JobsClient(replicas[proxies.index(other)].channel) as direct:
                await direct.cancel(key)
            final = await waiting
    finally:
        for proxy in proxies:
            await proxy.stop()
        for upstream in upstreams:
            await upstream.close(None)
        for replica in replicas:
            await replica.stop()
    assert final.status is JobStatus.CANCELLED
    assert len(other.calls) > calls_before, "the wait went on through the other replica"


async def test_wait_raises_wait_timeout_with_the_last_state(proxy: Proxy, rng: random.Random) -> None:
    key = new_key(jobs.COOPERATES)
    async with client_of(proxy, rng) as client:
        await client.create(key)
        with pytest.raises(TimeoutError) as raised:
            await client.wait(key, timeout=0.5)
        await client.cancel(key)
    assert getattr(raised.value, "last_state", None) is not None
    assert isinstance(raised.value, TransportError) is False
