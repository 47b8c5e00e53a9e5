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
        self.seen = False
        """Whether the handler has seen the token set (read `cancelled` true, returned from a wait, or raised): a
        handler that returns having seen a shutdown stopped because of it; one that never saw it finished its work."""

    @property
    def cancelled(self) -> bool:
        if self._flag.is_set():
            self.seen = True
            return True
        return False

    def cancel(self, reason: CancelReason = CancelReason.CANCEL_REQUESTED) -> None:
        if self._flag.is_set():
            return
        self.reason = reason
        self._flag.set()
        self._event.set()

    async def wait(self) -> None:
        """Return once cancellation is requested."""
        await self._event.wait()
        self.seen = True

    def wait_blocking(self, timeout: float | None = None) -> bool:
        """For plain (threaded) handlers: block up to `timeout`; True if cancelled."""
        if self._flag.wait(timeout):
            self.seen = True
            return True
        return False

    def raise_if_cancelled(self) -> None:
        if self._flag.is_set():
            self.seen = True
            raise JobCancelled(self.reason.value if self.reason else "cancelled")
