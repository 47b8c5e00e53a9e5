"""Places shared fairly among tenants: a semaphore whose waiters are served one tenant at a time, round-robin.

A tenant that queues thousands of jobs behind the places does not hold another's single job: when a place frees,
it goes to the oldest waiter of the tenant whose turn it is, and that tenant goes to the back of the round.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator


class FairSlots:
    def __init__(self, size: int) -> None:
        self._free = size
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()

    @contextlib.asynccontextmanager
    async def slot(self, tenant_id: str) -> AsyncIterator[None]:
        """Hold a place while the block runs, waiting for one in the tenant's turn."""
        await self._acquire(tenant_id)
        try:
            yield
        finally:
            self._release()

    def waiting(self) -> int:
        return sum(len(queue) for queue in self._waiting.values())

    async def _acquire(self, tenant_id: str) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        place: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(tenant_id, deque()).append(place)
        try:
            await place
        except asyncio.CancelledError:
            if place.done() and not place.cancelled():
                self._release()  # handed a place just as it was cancelled: pass it on
            else:
                self._forget(tenant_id, place)
            raise

    def _release(self) -> None:
        while self._waiting:
            tenant_id, queue = next(iter(self._waiting.items()))
            place = queue.popleft()
            if queue:
                self._waiting.move_to_end(tenant_id)
            else:
                del self._waiting[tenant_id]
            if not place.done():
                place.set_result(None)
                return
        self._free += 1

    def _forget(self, tenant_id: str, place: asyncio.Future[None]) -> None:
        queue = self._waiting.get(tenant_id)
        if queue is None:
            return
        with contextlib.suppress(ValueError):
            queue.remove(place)
        if not queue:
            del self._waiting[tenant_id]
