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

`deduplication` is what Fabric's item manifest says of the item type's job runs (`fabric-jobs manifest`
prints it): "None", "PerItem" (one run at a time per item and job type, the default) or "PerUser";
`scheduled_deduplication` sets scheduled runs apart. Registrations of one item type must agree.

`timeout` (a timedelta or seconds) bounds a run: past it the handler is told through its token (reason TIMEOUT),
stopped by force after the cancel grace, and the job ends Failed, JobTimedOut (retriable). `start_deadline` bounds
the wait: a job still NotStarted that long after its Create ends Failed, JobStartDeadlineExceeded, and never
starts. Either left None takes the service's default (`--job-timeout`, none; `--start-deadline`, 2 hours).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, Protocol, get_args

from fabric_jobs.cancellation import CancellationToken
from fabric_jobs.errors import ErrorCode, ErrorDetails, ErrorSource, ExtendedInfo
from fabric_jobs.identity import Caller
from fabric_jobs.keys import JobKey
from fabric_jobs.on_behalf_of.credential import scopes_of
from fabric_jobs.on_behalf_of.tokens import NOT_CONFIGURED, TokenSource
from fabric_jobs.status import InvokeType

MAX_PROGRESS_MESSAGE_LENGTH = 500
"""The longest progress message a handler may report, in characters."""


class ProgressSink(Protocol):
    """Where a context's progress reports go, validated (the executor's writer; by default, nowhere)."""

    def __call__(self, percent: float | None, message: str) -> None: ...


def discard_progress(percent: float | None, message: str) -> None:
    """The progress sink of a context made outside the service (a handler's unit test): reports are checked, then
    dropped."""


def checked_progress(percent: object, message: object) -> tuple[float | None, str]:
    """A progress report as it is stored: percent a number from 0 to 100 (or None), message text of at most
    MAX_PROGRESS_MESSAGE_LENGTH characters (None: empty); at least one given. Raises ValueError saying what is wrong."""
    if percent is None and not message:
        raise ValueError("report_progress needs a percent, a message or both")
    if percent is not None:
        if isinstance(percent, bool) or not isinstance(percent, int | float):
            raise ValueError(f"progress percent must be a number from 0 to 100, not {type(percent).__name__}")
        if not (math.isfinite(percent) and 0 <= percent <= 100):
            raise ValueError(f"progress percent must be from 0 to 100, not {percent!r}")
    if message is None:
        message = ""
    if not isinstance(message, str):
        raise ValueError(f"progress message must be text, not {type(message).__name__}")
    if len(message) > MAX_PROGRESS_MESSAGE_LENGTH:
        raise ValueError(
            f"progress message must be at most {MAX_PROGRESS_MESSAGE_LENGTH} characters, not {len(message)}"
        )
    return (None if percent is None else float(percent)), message


@dataclass(frozen=True)
class JobContext:
    """What a handler receives: the job's key, how it was invoked, its creationPayload, its cancellation
    token, and a logger whose lines carry the Create request's ActivityId and RequestId.

    For jobs that act for the user: `caller`, who asked (None for a job created without a user); `credential`,
    azure-core's token credential on the user's behalf (sync for plain handlers, async for async ones), for
    any Azure SDK client; and `await ctx.access_token(*scopes)`, a token's text. Both raise TokenUnavailable.

    `ctx.report_progress(percent, message)` tells how far the job has come (gRPC, the CLI, the console show it;
    Fabric's REST state does not).
    """

    key: JobKey
    invoke_type: InvokeType
    payload: Mapping[str, Any]
    cancellation: CancellationToken
    logger: logging.Logger
    caller: Caller | None = None
    credential: Any = field(default=None, repr=False)
    tokens: TokenSource = field(default=NOT_CONFIGURED, repr=False)
    progress_sink: ProgressSink = field(default=discard_progress, repr=False)

    def report_progress(self, percent: float | None = None, message: str | None = None) -> None:
        """Report how far the job has come: `percent`, a number from 0 to 100, and/or `message`, at most 500
        characters. Each report replaces the previous one whole (a report without a percent shows none).

        One plain method for async handlers and plain ones alike: it returns at once, never waits for the database,
        and may be called from the event loop or from a handler's thread. Reports are written in the background, at
        most one per job per interval (`--progress-interval`, 1 s by default): a report that comes before the next
        write replaces the one waiting, so a tight loop costs one write per interval, and the last report is always
        written, before the job's end is recorded. Raises ValueError for a percent outside 0..100 (or not a number),
        a message too long (or not text), or neither given."""
        self.progress_sink(*checked_progress(percent, message))

    async def access_token(self, *scopes: str) -> str:
        """A token for `scopes` (e.g. "https://storage.azure.com/.default") on behalf of the job's user, from
        Entra's on-behalf-of flow, cached and refreshed before it expires. Raises TokenUnavailable."""
        return (await self.tokens.token(scopes_of(scopes))).value


Deduplication = Literal["None", "PerItem", "PerUser"]
DEDUPLICATION_OPTIONS: tuple[Deduplication, ...] = get_args(Deduplication)
DEFAULT_DEDUPLICATION: Deduplication = "PerItem"

Handler = Callable[[JobContext], Awaitable[None] | None]
Seconds = timedelta | float
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
    deduplication: Deduplication | None = None
    scheduled_deduplication: Deduplication | None = None
    user_scopes: tuple[str, ...] = ()
    timeout_seconds: float | None = None
    """How long a run may take before it is stopped and ends Failed (JobTimedOut); None: the service's default."""
    start_deadline_seconds: float | None = None
    """How long after its Create a job may start; None: the service's default."""


class JobRegistry:
    """The job types of a workload: one handler (and an optional payload validator) per (itemType, jobType)."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str], JobType] = {}

    def job(
        self,
        item_type: str,
        job_type: str,
        *,
        validate: PayloadValidator | None = None,
        deduplication: Deduplication | None = None,
        scheduled_deduplication: Deduplication | None = None,
        user_scopes: Sequence[str] = (),
        timeout: Seconds | None = None,
        start_deadline: Seconds | None = None,
    ) -> Callable[[Handler], Handler]:
        """Decorator form of `add`; returns the handler unchanged."""

        def register(handler: Handler) -> Handler:
            self.add(
                item_type,
                job_type,
                handler,
                validate=validate,
                deduplication=deduplication,
                scheduled_deduplication=scheduled_deduplication,
                user_scopes=user_scopes,
                timeout=timeout,
                start_deadline=start_deadline,
            )
            return handler

        return register

    def add(
        self,
        item_type: str,
        job_type: str,
        handler: Handler,
        *,
        validate: PayloadValidator | None = None,
        deduplication: Deduplication | None = None,
        scheduled_deduplication: Deduplication | None = None,
        user_scopes: Sequence[str] = (),
        timeout: Seconds | None = None,
        start_deadline: Seconds | None = None,
    ) -> None:
        """Register `handler` (async or plain) for (item_type, job_type); `validate` runs at Create and may
        raise InvalidPayload; `deduplication` and `scheduled_deduplication` (None, PerItem, PerUser) are the
        item type's options in Fabric's item manifest. `user_scopes` makes the job act for its user: the Create
        exchanges the user's token for these scopes (on behalf of the user) and keeps what the job needs to get
        tokens for any scope until it ends. `timeout` and `start_deadline` (a timedelta or seconds, more than 0;
        None: the service's defaults) bound a run and the wait before it. Registering the same pair twice, options
        that disagree within an item type, or a deadline that is not a positive length of time is a ValueError."""
        if (item_type, job_type) in self._types:
            raise ValueError(f"job type {item_type}/{job_type} is registered twice")
        for name, value in (("deduplication", deduplication), ("scheduled_deduplication", scheduled_deduplication)):
            if value is not None and value not in DEDUPLICATION_OPTIONS:
                raise ValueError(
                    f"{name} of {item_type}/{job_type} must be one of {DEDUPLICATION_OPTIONS}, not {value!r}"
                )
        is_async = inspect.iscoroutinefunction(handler)
        scopes = scopes_of(tuple(user_scopes)) if user_scopes else ()
        new = JobType(
            item_type,
            job_type,
            handler,
            validate,
            is_async,
            deduplication,
            scheduled_deduplication,
            scopes,
            timeout_seconds=_seconds(f"timeout of {item_type}/{job_type}", timeout),
            start_deadline_seconds=_seconds(f"start_deadline of {item_type}/{job_type}", start_deadline),
        )
        for other in self.job_types():
            if other.item_type == item_type and _deduplication_conflict(other, new):
                raise ValueError(
                    f"item type {item_type}: {other.job_type} and {job_type} set different deduplication options"
                )
        self._types[(item_type, job_type)] = new

    def get(self, item_type: str, job_type: str) -> JobType | None:
        return self._types.get((item_type, job_type))

    def job_types(self) -> list[JobType]:
        """Every registered job type, in the order of registration."""
        return list(self._types.values())

    def deduplication(self, item_type: str) -> tuple[Deduplication, Deduplication]:
        """The item type's deduplication of on-demand and of scheduled runs: as a registration set it, else PerItem."""
        on_demand: Deduplication = DEFAULT_DEDUPLICATION
        scheduled: Deduplication | None = None
        for job_type in self._types.values():
            if job_type.item_type == item_type:
                on_demand = job_type.deduplication or on_demand
                scheduled = job_type.scheduled_deduplication or job_type.deduplication or scheduled
        return on_demand, scheduled or on_demand


def load_registry(spec: str, *, not_found_hint: str = "is the package installed?") -> JobRegistry:
    """Import `package.module:attribute` and return the JobRegistry it names. Raises ValueError saying what is
    wrong in one line; `not_found_hint` follows the message of a module that is not found."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"--jobs must look like package.module:attribute, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise ValueError(f"--jobs: cannot import {module_name!r}: {exc}; {not_found_hint}") from exc
        raise ValueError(f"--jobs: importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise ValueError(f"--jobs: importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
    if not hasattr(module, attribute):
        found = [name for name, value in vars(module).items() if isinstance(value, JobRegistry)]
        its = f" (its JobRegistry: {', '.join(found)})" if found else " (it holds no JobRegistry)"
        raise ValueError(f"--jobs: module {module_name!r} has no attribute {attribute!r}{its}")
    registry = getattr(module, attribute)
    if not isinstance(registry, JobRegistry):
        kind = "function" if inspect.isfunction(registry) else type(registry).__name__
        raise ValueError(f"--jobs: {spec!r} is a {kind}, not a JobRegistry")
    return registry


def _seconds(name: str, value: Seconds | None) -> float | None:
    """A deadline as seconds: a timedelta or a number, more than 0 and finite; None stays None."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ValueError(f"{name} must be a timedelta or a number of seconds, not {value!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name} must be more than 0 seconds, not {value!r}")
    return seconds


def _deduplication_conflict(first: JobType, second: JobType) -> bool:
    def differ(a: Deduplication | None, b: Deduplication | None) -> bool:
        return a is not None and b is not None and a != b

    return differ(first.deduplication, second.deduplication) or differ(
        first.scheduled_deduplication or first.deduplication, second.scheduled_deduplication or second.deduplication
    )
