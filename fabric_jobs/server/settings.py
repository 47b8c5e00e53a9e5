"""What the JobService is told at start. Read from the command line or the environment, once, at the edge."""

from __future__ import annotations

from dataclasses import dataclass

from fabric_jobs.on_behalf_of.tokens import UserTokenProvider

DEFAULT_DATABASE = "sqlite:///./fabric-jobs.db"
DEFAULT_RETENTION_SECONDS = 30 * 86400.0
"""30 days, as long as Fabric's Monitor hub shows a job."""


@dataclass(frozen=True)
class ServiceSettings:
    database: str = DEFAULT_DATABASE
    cancel_wait: float = 2.0
    """How long a Cancel of a running job waits for the handler to stop before it answers."""
    cancel_grace: float = 30.0
    """How long a handler may take to honour a cancel before it is stopped by force."""
    shutdown_grace: float = 10.0
    """On shutdown, how long running handlers may take to finish before they are stopped."""
    lease_seconds: float = 10.0
    """A running job whose executor has not renewed its lease for this long ends Failed (retriable)."""
    max_threads: int = 32
    """Plain (non-async) handlers run in a pool of this many threads."""
    worker_concurrency: int = 32
    """On PostgreSQL, how many jobs one worker runs at once."""
    max_payload_bytes: int = 65536
    """The largest creationPayload accepted, as compact JSON."""
    retention_seconds: float = DEFAULT_RETENTION_SECONDS
    """Terminal jobs that ended this long ago are deleted with their history; 0 keeps every job."""
    prune_interval_seconds: float = 300.0
    """How often a serving process deletes the jobs past retention_seconds (and once at start)."""
    user_tokens: UserTokenProvider | None = None
    """Where tokens on behalf of a job's user come from (Entra, with the workload's app credentials); None: nowhere,
    ctx.access_token then says which options to set."""
