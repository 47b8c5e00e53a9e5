"""A client of fabric-jobs for a workload's own services: the JobService (JobsClient, asyncio; SyncJobsClient,
blocking) and the AdminService (AdminClient; SyncAdminClient, blocking), with typed results, Fabric's errors as
exceptions, deadlines, ActivityId and RequestId, retries of what is safe to retry, and TLS.

    from fabric_jobs.client import JobKey, JobsClient

    async with JobsClient.connect("dns:///fabric-jobs-grpc:50051") as jobs:
        await jobs.create(key, payload={"rows": 5})
        final = await jobs.wait(key, timeout=60)

See docs/client.md.
"""

from fabric_jobs.client._calls import CallOptions
from fabric_jobs.client.admin import AdminClient
from fabric_jobs.client.channel import Tls, open_channel
from fabric_jobs.client.errors import (
    InternalError,
    InvalidRequest,
    JobInstanceConflict,
    JobInstanceNotFound,
    JobsError,
    ServiceError,
    ServiceUnavailable,
    TransportError,
    UnsupportedJobType,
    WaitTimeout,
)
from fabric_jobs.client.jobs import JobsClient
from fabric_jobs.client.results import (
    CancelledAll,
    Counts,
    Created,
    History,
    JobFilter,
    JobProgress,
    JobState,
    Page,
    Transition,
)
from fabric_jobs.client.retries import NO_RETRIES, RetryBudget, RetryPolicy
from fabric_jobs.client.sync import SyncAdminClient, SyncJobsClient
from fabric_jobs.errors import ErrorDetails, ErrorSource, ExtendedInfo, FieldViolation
from fabric_jobs.keys import JobKey
from fabric_jobs.status import InvokeType, JobStatus

__all__ = [
    "NO_RETRIES",
    "AdminClient",
    "CallOptions",
    "CancelledAll",
    "Counts",
    "Created",
    "ErrorDetails",
    "ErrorSource",
    "ExtendedInfo",
    "FieldViolation",
    "History",
    "InternalError",
    "InvalidRequest",
    "InvokeType",
    "JobFilter",
    "JobInstanceConflict",
    "JobInstanceNotFound",
    "JobKey",
    "JobProgress",
    "JobState",
    "JobStatus",
    "JobsClient",
    "JobsError",
    "Page",
    "RetryBudget",
    "RetryPolicy",
    "ServiceError",
    "ServiceUnavailable",
    "SyncAdminClient",
    "SyncJobsClient",
    "Tls",
    "Transition",
    "TransportError",
    "UnsupportedJobType",
    "WaitTimeout",
    "open_channel",
]
