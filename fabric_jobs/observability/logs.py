"""Log lines to stderr, readable text (the default) or one JSON object per line (for log shippers); each
carries the ActivityId, RequestId, tenant and job of the request or job it concerns."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from fabric_jobs.request_context import ContextFilter

FORMATS = ("text", "json")
CONTEXT_FIELDS = ("activity_id", "request_id", "tenant", "job")
QUIET_LIBRARIES = ("procrastinate",)
"""Libraries whose INFO lines say nothing ours do not (procrastinate logs several per job): at WARNING and above
unless --log-level DEBUG."""
REQUEST_FIELDS = ("method", "route", "status", "duration_ms", "grpc_method", "grpc_code")
"""Fields of the one line per REST request and per gRPC call, passed as `extra`."""


def _time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        context = (
            f"activity={getattr(record, 'activity_id', '-')} request={getattr(record, 'request_id', '-')}"
            f" tenant={getattr(record, 'tenant', '-')} job={getattr(record, 'job', '-')}"
        )
        line = f"{_time(record)} {record.levelname} {record.name} [{context}] {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, "-")
            entry[name] = None if value == "-" else value
        for name in REQUEST_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str = "INFO", log_format: str = "text") -> None:
    """Log to stderr in `log_format` (text or json) with the context on every line. Called once, by the command line."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet = level if level == "DEBUG" else max(logging.getLevelNamesMapping()[level], logging.WARNING)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(quiet)
