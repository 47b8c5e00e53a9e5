"""Notification of job changes, for Watch and for waiting cancels.

Changes made in this process are published directly. Changes made by other processes sharing the
database are published by a ChangeListener where the database has one (PostgreSQL LISTEN/NOTIFY),
and otherwise seen by polling at `poll_seconds`, which is also the fallback while a listener has
lost its connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from fabric_jobs.server.model import JobKey

POLL_SECONDS = 1.0
"""How often waiters look at the store when no listener tells them of other processes' changes."""
SAFETY_POLL_SECONDS = 30.0
"""How often they look while a listener is connected: every change arrives by notification."""


class ChangeFeed:
    def __init__(self) -> None:
        self._subscribers: dict[JobKey, set[asyncio.Event]] = {}
        self._every_job: set[asyncio.Event] = set()
        self.poll_seconds = POLL_SECONDS

    def publish(self, key: JobKey) -> None:
        for event in self._subscribers.get(key, ()):
            event.set()
        for event in self._every_job:
            event.set()

    def publish_all(self) -> None:
        """Wake every waiter: after a gap in notifications, any job may have changed."""
        for events in self._subscribers.values():
            for event in events:
                event.set()
        for event in self._every_job:
            event.set()

    def set_listening(self, listening: bool) -> None:
        self.poll_seconds = SAFETY_POLL_SECONDS if listening else POLL_SECONDS

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

    @contextmanager
    def subscribe_every_job(self) -> Iterator[asyncio.Event]:
        """An event set whenever any job changes (the admin change feed)."""
        event = asyncio.Event()
        self._every_job.add(event)
        try:
            yield event
        finally:
            self._every_job.discard(event)
