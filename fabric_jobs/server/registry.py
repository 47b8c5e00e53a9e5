"""The handler API for workload authors: register a function per (itemType, jobType).

    registry = JobRegistry()

    @registry.job("Contoso.FinanceAnalytics.Forecast", "calculateForecast")
    async def calculate_forecast(ctx: JobContext) -> None:
        while not ctx.cancellation.cancelled:
            ...

Async functions run on the event loop; plain functions run in a thread pool. A handler that
returns ends Completed (Cancelled if a cancel was requested before it returned); one that raises
JobFailed ends Failed with those error details; any other exception ends Failed with
errorCode JobExecutionFailed.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fabric_jobs.errors import ErrorCode, ErrorDetails, ErrorSource, ExtendedInfo
from fabric_jobs.server.cancellation import CancellationToken
from fabric_jobs.server.model import InvokeType, JobKey


@dataclass(frozen=True)
class JobContext:
    """What a handler receives: the job's key, how it was invoked, its creationPayload, its cancellation
    token, and a logger whose lines carry the Create request's ActivityId and RequestId."""

    key: JobKey
    invoke_type: InvokeType
    payload: Mapping[str, Any]
    cancellation: CancellationToken
    logger: logging.Logger


Handler = Callable[[JobContext], Awaitable[None] | None]
PayloadValidator = Callable[[Mapping[str, Any]], None]


class InvalidPayload(ValueError):
    """Raised by a payload validator; `field` names the offending creationPayload field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class JobFailed(Exception):
    """Raise from a handler to end the job Failed with these error details."""

    def __init__(
        self,
        message: str,
        *,
        error_code: str = ErrorCode.JOB_EXECUTION_FAILED,
        source: ErrorSource = ErrorSource.USER,
        is_permanent: bool = True,
        message_parameters: tuple[str, ...] = (),
        more_details: tuple[ExtendedInfo, ...] = (),
    ) -> None:
        super().__init__(message)
        self.details = ErrorDetails(error_code, message, source, is_permanent, message_parameters, more_details)


@dataclass(frozen=True)
class JobType:
    item_type: str
    job_type: str
    handler: Handler
    validate: PayloadValidator | None
    is_async: bool


class JobRegistry:
    """The job types of a workload: one handler (and an optional payload validator) per (itemType, jobType)."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str], JobType] = {}

    def job(
        self, item_type: str, job_type: str, *, validate: PayloadValidator | None = None
    ) -> Callable[[Handler], Handler]:
        """Decorator form of `add`; returns the handler unchanged."""

        def register(handler: Handler) -> Handler:
            self.add(item_type, job_type, handler, validate=validate)
            return handler

        return register

    def add(self, item_type: str, job_type: str, handler: Handler, *, validate: PayloadValidator | None = None) -> None:
        """Register `handler` (async or plain) for (item_type, job_type); `validate` runs at Create and may
        raise InvalidPayload. Registering the same pair twice is a ValueError."""
        if (item_type, job_type) in self._types:
            raise ValueError(f"job type {item_type}/{job_type} is registered twice")
        is_async = inspect.iscoroutinefunction(handler)
        self._types[(item_type, job_type)] = JobType(item_type, job_type, handler, validate, is_async)

    def get(self, item_type: str, job_type: str) -> JobType | None:
        return self._types.get((item_type, job_type))


def load_registry(spec: str) -> JobRegistry:
    """Import `package.module:attribute` and return the JobRegistry it names. Raises ValueError."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"--jobs must look like package.module:attribute, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"--jobs: cannot import {module_name!r}: {exc}") from exc
    registry = getattr(module, attribute, None)
    if not isinstance(registry, JobRegistry):
        raise ValueError(f"--jobs: {spec!r} is not a JobRegistry")
    return registry


def canonical_json(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
