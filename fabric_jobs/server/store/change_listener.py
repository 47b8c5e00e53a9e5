"""Job changes made by any process, heard through PostgreSQL LISTEN/NOTIFY.

The PostgreSQL store announces the key and new version of every job instance it changes on the channel
`fabric_jobs_changes`, right after the change commits (migration 0002). This listener publishes
each into the process's ChangeFeed, so that a Cancel's wait and WatchJobInstance on any replica see
a change made by any other process within milliseconds. While its connection is lost the feed polls, and the listener
reconnects; on reconnecting it wakes every waiter once, since a change may have been missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg

from fabric_jobs.server.store.changes import ChangeFeed, parse_announcement

logger = logging.getLogger(__name__)

CHANNEL = "fabric_jobs_changes"
RECONNECT_SECONDS = 1.0
START_SECONDS = 5.0


class ChangeListener:
    def __init__(self, url: str, feed: ChangeFeed, *, origin: str) -> None:
        """`origin`: that of the store whose changes this process publishes itself (they are not published twice)."""
        self._url = url
        self._feed = feed
        self._origin = origin
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    async def start(self) -> None:
        """Listen in the background; return once listening (or after START_SECONDS, polling until then)."""
        self._task = asyncio.create_task(self._listen_forever(), name="job change listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), START_SECONDS)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _listen_forever(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    self._feed.set_listening(True)
                    self._feed.publish_all()
                    async for notification in connection.notifies():
                        announced = parse_announcement(notification.payload)
                        if announced is not None and announced.origin != self._origin:
                            self._feed.publish_announced(announced.key, announced.version)
            except psycopg.Error as exc:
                logger.warning("job change listener lost its connection (%s); polling until it reconnects", exc)
            finally:
                self._listening.clear()
                self._feed.set_listening(False)
            await asyncio.sleep(RECONNECT_SECONDS)
