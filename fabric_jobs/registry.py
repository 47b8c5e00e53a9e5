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
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from fabric_jobs.cancellation import CancellationToken
from fabric_jobs.errors import ErrorCode, ErrorDetails, ErrorSource, ExtendedInfo
from fabric_jobs.identity import Caller
from fabric_jobs.keys import JobKey
from fabric_jobs.on_behalf_of.credential import scopes_of
from fabric_jobs.on_behalf_of.tokens import NOT_CONFIGURED, TokenSource
from fabric_jobs.status import InvokeType


@dataclass(frozen=True)
class JobContext:
    """What a handler receives: the job's key, how it was invoked, its creationPayload, its cancellation
    token, and a logger whose lines carry the Create request's ActivityId and RequestId.

    For jobs that act for the user: `caller`, who asked (None for a job created without a user); `credential`,
    azure-core's token credential on the user's behalf (sync for plain handlers, async for async ones), for
    any Azure SDK client; and `await ctx.access_token(*scopes)`, a token's text. Both raise TokenUnavailable.
    """

    key: JobKey
    invoke_type: InvokeType
    payload: Mapping[str, Any]
    cancellation: CancellationToken
    logger: logging.Logger
    caller: Caller | None = None
    credential: Any = field(default=None, repr=False)
    tokens: TokenSource = field(default=NOT_CONFIGURED, repr=False)

    async def access_token(self, *scopes: str) -> str:
        """A token for `scopes` (e.g. "https://storage.azure.com/.default") on behalf of the job's user, from
        Entra's on-behalf-of flow, cached and refreshed before it expires. Raises TokenUnavailable."""
        return (await self.tokens.token(scopes_of(scopes))).value


Deduplication = Literal["None", "PerItem", "PerUser"]
DEDUPLICATION_OPTIONS: tuple[Deduplication, ...] = get_args(Deduplication)
DEFAULT_DEDUPLICATION: Deduplication = "PerItem"

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
    deduplication: Deduplication | None = None
    scheduled_deduplication: Deduplication | None = None
    user_scopes: tuple[str, ...] = ()


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
    ) -> None:
        """Register `handler` (async or plain) for (item_type, job_type); `validate` runs at Create and may
        raise InvalidPayload; `deduplication` and `scheduled_deduplication` (None, PerItem, PerUser) are the
        item type's options in Fabric's item manifest. `user_scopes` makes the job act for its user: the Create
        exchanges the user's token for these scopes (on behalf of the user) and keeps what the job needs to get
        tokens for any scope until it ends. Registering the same pair twice, or options that disagree within an
        item type, is a ValueError."""
        if (item_type, job_type) in self._types:
            raise ValueError(f"job type {item_type}/{job_type} is registered twice")
        for name, value in (("deduplication", deduplication), ("scheduled_deduplication", scheduled_deduplication)):
            if value is not None and value not in DEDUPLICATION_OPTIONS:
                raise ValueError(
                    f"{name} of {item_type}/{job_type} must be one of {DEDUPLICATION_OPTIONS}, not {value!r}"
                )
        is_async = inspect.iscoroutinefunction(handler)
        scopes = scopes_of(tuple(user_scopes)) if user_scopes else ()
        new = JobType(item_type, job_type, handler, validate, is_async, deduplication, scheduled_deduplication, scopes)
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


def _deduplication_conflict(first: JobType, second: JobType) -> bool:
    def differ(a: Deduplication | None, b: Deduplication | None) -> bool:
        return a is not None and b is not None and a != b

    return differ(first.deduplication, second.deduplication) or differ(
        first.scheduled_deduplication or first.deduplication, second.scheduled_deduplication or second.deduplication
    )
