"""Notification of job changes, for Watch and for waiting cancels.

Changes made in this process are published with the record the change's own statement returned, so a
waiter takes it as it is and reads nothing. Changes made by other processes sharing the database are
published by key and version by a ChangeListener where the database has one (PostgreSQL LISTEN/NOTIFY): a
waiter that holds an older version then reads the job once. A listener passes over the announcements of its
own store's changes, which were published here already. Without a listener they are seen by polling at
`poll_seconds`, which is also the fallback while a listener has lost its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fabric_jobs.server.model import JobKey, JobRecord

POLL_SECONDS = 1.0
"""How often waiters look at the store when no listener tells them of other processes' changes."""
SAFETY_POLL_SECONDS = 30.0
"""How often they look while a listener is connected: every change arrives by notification."""


def announcement(key: JobKey, version: int, origin: str) -> str:
    """What a store announces of a change to other processes: the key's text, the job's version after the change,
    and the store that made it (`origin`, for its own listener to pass over)."""
    return f"{key.to_text()} {version} {origin}"


@dataclass(frozen=True, slots=True)
class Announcement:
    key: JobKey
    version: int | None
    """None for an announcement without one (a bare key): newer than anything."""
    origin: str | None


def parse_announcement(text: str) -> Announcement | None:
    """What `announcement` wrote (or a bare key's text), or None for other text."""
    key_text, _, rest = text.partition(" ")
    key = JobKey.from_text(key_text)
    if key is None:
        return None
    version, _, origin = rest.partition(" ")
    return Announcement(key, int(version) if version.isdigit() else None, origin or None)


class Changes:
    """What one subscriber has been told since it last looked: records published in this process, and versions
    (or bare keys) announced by others."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._record: JobRecord | None = None
        self._announced = -1

    def tell(self, record: JobRecord) -> None:
        if self._record is None or record.version > self._record.version:
            self._record = record
        self._event.set()

    def tell_version(self, version: int | None) -> None:
        """Another process changed the job (to `version`; None when unknown, which is newer than anything)."""
        self._announced = max(self._announced, version if version is not None else UNKNOWN_VERSION)
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """Wait up to `seconds` for a change; False when none came."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), seconds)
        return self._event.is_set()

    def take(self, current: JobRecord) -> JobRecord | None:
        """The job as the subscriber now knows it, holding `current`: the newest record it was told of, `current`
        when nothing newer came, or None when a newer version was announced that only a read can give.
        Clears what was told."""
        newest = self._record if self._record is not None and self._record.version > current.version else current
        must_read = self._announced > newest.version
        self._event.clear()
        self._record = None
        self._announced = -1
        return None if must_read else newest


UNKNOWN_VERSION = 2**63
"""The version taken for an announcement without one (a bare key, or a gap in notifications)."""


class ChangeFeed:
    def __init__(self) -> None:
        self._subscribers: dict[JobKey, set[Changes]] = {}
        self._every_job: set[asyncio.Event] = set()
        self.poll_seconds = POLL_SECONDS

    def publish(self, record: JobRecord) -> None:
        """A change this process made, as its statement returned the job."""
        for changes in self._subscribers.get(record.key, ()):
            changes.tell(record)
        for event in self._every_job:
            event.set()

    def publish_announced(self, key: JobKey, version: int | None) -> None:
        """A change another process made, heard by key and version: subscribers that hold an older version read."""
        for changes in self._subscribers.get(key, ()):
            changes.tell_version(version)
        for event in self._every_job:
            event.set()

    def publish_all(self) -> None:
        """Wake every waiter: after a gap in notifications, any job may have changed."""
        for subscribers in self._subscribers.values():
            for changes in subscribers:
                changes.tell_version(None)
        for event in self._every_job:
            event.set()

    def set_listening(self, listening: bool) -> None:
        self.poll_seconds = SAFETY_POLL_SECONDS if listening else POLL_SECONDS

    @contextmanager
    def subscribe(self, key: JobKey) -> Iterator[Changes]:
        changes = Changes()
        self._subscribers.setdefault(key, set()).add(changes)
        try:
            yield changes
        finally:
            subscribers = self._subscribers.get(key)
            if subscribers is not None:
                subscribers.discard(changes)
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
