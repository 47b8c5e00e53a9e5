"""The cancellation token a handler receives: poll it, await it, or block on it from a thread."""

from __future__ import annotations

import asyncio
import enum
import threading


class CancelReason(enum.Enum):
    CANCEL_REQUESTED = "cancel requested"
    SHUTDOWN = "service shutting down"


class JobCancelled(Exception):
    """Raised by CancellationToken.raise_if_cancelled; a handler may let it propagate."""


class CancellationToken:
    """Set once, from the event loop; readable from the loop and from handler threads."""

    def __init__(self) -> None:
        self._flag = threading.Event()
        self._event = asyncio.Event()
        self.reason: CancelReason | None = None

    @property
    def cancelled(self) -> bool:
        return self._flag.is_set()

    def cancel(self, reason: CancelReason = CancelReason.CANCEL_REQUESTED) -> None:
        if self._flag.is_set():
            return
        self.reason = reason
        self._flag.set()
        self._event.set()

    async def wait(self) -> None:
        """Return once cancellation is requested."""
        await self._event.wait()

    def wait_blocking(self, timeout: float | None = None) -> bool:
        """For plain (threaded) handlers: block up to `timeout`; True if cancelled."""
        return self._flag.wait(timeout)

    def raise_if_cancelled(self) -> None:
        if self._flag.is_set():
            raise JobCancelled(self.reason.value if self.reason else "cancelled")
