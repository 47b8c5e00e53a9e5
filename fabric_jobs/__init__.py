"""fabric-jobs: the Jobs API of Microsoft Fabric workloads, as a gRPC JobService and a REST bridge.

The names below are the stable API for workload authors: what a job handler and its registration need.

    from fabric_jobs import JobContext, JobFailed, JobRegistry

    registry = JobRegistry()

    @registry.job("Contoso.FinanceAnalytics.Forecast", "calculateForecast")
    async def calculate_forecast(ctx: JobContext) -> None:
        ...

They are loaded on first use (PEP 562), so `import fabric_jobs.rest_bridge` in a process that runs
no handlers does not load the JobService. Everything else in the package is internal.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fabric_jobs.errors import ErrorSource, ExtendedInfo
    from fabric_jobs.identity import Caller, TokenUnavailable
    from fabric_jobs.keys import JobKey
    from fabric_jobs.server.cancellation import CancellationToken, CancelReason, JobCancelled
    from fabric_jobs.server.registry import (
        Handler,
        InvalidPayload,
        JobContext,
        JobFailed,
        JobRegistry,
        PayloadValidator,
    )
    from fabric_jobs.status import InvokeType

from fabric_jobs._version import __version__

__all__ = [
    "Caller",
    "CancelReason",
    "CancellationToken",
    "ErrorSource",
    "ExtendedInfo",
    "Handler",
    "InvalidPayload",
    "InvokeType",
    "JobCancelled",
    "JobContext",
    "JobFailed",
    "JobKey",
    "JobRegistry",
    "PayloadValidator",
    "TokenUnavailable",
    "__version__",
]

_HOMES = {
    "Caller": "fabric_jobs.identity",
    "TokenUnavailable": "fabric_jobs.identity",
    "ErrorSource": "fabric_jobs.errors",
    "ExtendedInfo": "fabric_jobs.errors",
    "CancellationToken": "fabric_jobs.server.cancellation",
    "CancelReason": "fabric_jobs.server.cancellation",
    "JobCancelled": "fabric_jobs.server.cancellation",
    "InvokeType": "fabric_jobs.status",
    "JobKey": "fabric_jobs.keys",
    "Handler": "fabric_jobs.server.registry",
    "InvalidPayload": "fabric_jobs.server.registry",
    "JobContext": "fabric_jobs.server.registry",
    "JobFailed": "fabric_jobs.server.registry",
    "JobRegistry": "fabric_jobs.server.registry",
    "PayloadValidator": "fabric_jobs.server.registry",
}

if not TYPE_CHECKING:  # hidden from type checkers, so a misspelt name is an error there, not an `object`

    def __getattr__(name: str) -> object:
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module 'fabric_jobs' has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
