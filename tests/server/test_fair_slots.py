"""FairSlots: the places of the plain-handler pool, handed out round-robin among the tenants waiting for one."""

from __future__ import annotations

import asyncio

from fabric_jobs.server.execution.fair_slots import FairSlots
from tests.harness import eventually


async def test_freed_places_go_round_robin_among_tenants_each_oldest_first() -> None:
    slots = FairSlots(1)
    order: list[str] = []
    release = asyncio.Event()

    async def hold(tenant: str, name: str) -> None:
        async with slots.slot(tenant):
            order.append(name)
            await release.wait()

    first = asyncio.create_task(hold("A", "a0"))
    await eventually(lambda: order == ["a0"], what="a0 holding the place")
    waiting = [asyncio.create_task(hold("A", f"a{n}")) for n in (1, 2, 3)]
    waiting.append(asyncio.create_task(hold("B", "b0")))
    await eventually(lambda: slots.waiting() == 4, what="four waiters")

    release.set()
    await asyncio.gather(first, *waiting)

    assert order == ["a0", "a1", "b0", "a2", "a3"]


async def test_a_waiter_cancelled_before_its_turn_or_as_it_is_handed_the_place_loses_no_place() -> None:
    slots = FairSlots(1)
    holder_done = asyncio.Event()

    async def hold_until_done() -> None:
        async with slots.slot("A"):
            await holder_done.wait()

    holder = asyncio.create_task(hold_until_done())
    await eventually(lambda: slots.waiting() == 0 and not holder.done(), what="the holder")
    gone = asyncio.create_task(hold_until_done())
    handed = asyncio.create_task(hold_until_done())
    await eventually(lambda: slots.waiting() == 2, what="two waiters")
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    assert slots.waiting() == 1

    holder_done.set()
    await holder  # releasing hands the place to `handed`, which is cancelled before it runs
    handed.cancel()
    await asyncio.gather(handed, return_exceptions=True)

    async with asyncio.timeout(1):
        async with slots.slot("B"):
            pass
    assert slots.waiting() == 0
