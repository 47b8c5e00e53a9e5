"""fabric-jobs: the Jobs API of Microsoft Fabric workloads, as a gRPC JobService and a REST bridge.

The names below are the stable API for workload authors: what a job handler and its registration need.

    from fabric_jobs import JobContext, JobFailed, JobRegistry

    registry = JobRegistry()

    @registry.job("Contoso.FinanceAnalytics.Forecast", "calculateForecast")
    async def calculate_forecast(ctx: JobContext) -> None:
        ...

They live in modules of their own (fabric_jobs.registry, fabric_jobs.cancellation, ...), apart from the
JobService in fabric_jobs.server, so importing them loads no server. Everything else in the package is internal.
"""

from __future__ import annotations

from fabric_jobs._version import __version__
from fabric_jobs.cancellation import CancellationToken, CancelReason, JobCancelled
from fabric_jobs.errors import ErrorSource, ExtendedInfo
from fabric_jobs.identity import Caller, TokenUnavailable
from fabric_jobs.keys import JobKey
from fabric_jobs.registry import Handler, InvalidPayload, JobContext, JobFailed, JobRegistry, PayloadValidator
from fabric_jobs.status import InvokeType

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
