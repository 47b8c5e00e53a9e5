"""In-process notification of job changes, for Watch and for waiting cancels.

Changes made by other processes sharing the database are seen by polling at `POLL_SECONDS`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from fabric_jobs.server.model import JobKey

POLL_SECONDS = 1.0


class ChangeFeed:
    def __init__(self) -> None:
        self._subscribers: dict[JobKey, set[asyncio.Event]] = {}

    def publish(self, key: JobKey) -> None:
        for event in self._subscribers.get(key, ()):
            event.set()

    @contextmanager
    def subscribe(self, key: JobKey) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._subscribers.setdefault(key, set()).add(event)
        try:
            yield event
        finally:
            subscribers = self._subscribers.get(key)
            if subscribers is not None:
                subscribers.discard(event)
                if not subscribers:
                    del self._subscribers[key]
