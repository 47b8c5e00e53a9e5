"""The request's ActivityId and RequestId, carried in contextvars and stamped on every log line.

The bridge reads them from Fabric's headers and sends them as gRPC metadata; the server reads the
metadata back. Tasks started while handling a request (job handlers included) inherit them.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, unquote

ACTIVITY_ID_METADATA = "activity-id"
REQUEST_ID_METADATA = "request-id"

activity_id: contextvars.ContextVar[str] = contextvars.ContextVar("activity_id", default="-")
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [activity=%(activity_id)s request=%(request_id)s] %(message)s"


@contextmanager
def bound(activity: str | None, request: str | None) -> Iterator[None]:
    """Within the block, log lines carry these ids."""
    activity_token = activity_id.set(activity or "-")
    request_token = request_id.set(request or "-")
    try:
        yield
    finally:
        request_id.reset(request_token)
        activity_id.reset(activity_token)


MAX_ID_LENGTH = 512
"""The longest ActivityId or RequestId carried: two at the worst of percent-encoding stay under gRPC's 8 KiB of
metadata."""
_PRINTABLE_BUT_PERCENT = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) != "%")


def metadata() -> tuple[tuple[str, str], ...]:
    """The current ids as gRPC metadata (nothing for an id that is not set), percent-encoded: metadata takes
    printable ASCII only, and Fabric's headers may carry any byte (read as Latin-1)."""
    pairs = ((ACTIVITY_ID_METADATA, activity_id.get()), (REQUEST_ID_METADATA, request_id.get()))
    return tuple((k, quote(v, safe=_PRINTABLE_BUT_PERCENT)) for k, v in pairs if v != "-")


def from_metadata(value: str) -> str:
    """An id as `metadata` sent it."""
    return unquote(value)


def ids() -> dict[str, str | None]:
    """The current ids by name (activity_id, request_id); None for an id that is not set."""
    activity, request = activity_id.get(), request_id.get()
    return {"activity_id": None if activity == "-" else activity, "request_id": None if request == "-" else request}


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.activity_id = activity_id.get()
        record.request_id = request_id.get()
        return True


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr with the request's ids on every line. Called once, by the command line."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
