"""Every Prometheus metric of fabric-jobs, on prometheus-client's default registry (which also carries the
standard process_* and python_* metrics). No label takes an unbounded value: routes and gRPC methods are the
service's own, job types are the registered ones, statuses and codes are enumerations."""

from __future__ import annotations

from typing import Any

import prometheus_client
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from fabric_jobs.observability.request_stats import RequestStats

REGISTRY = prometheus_client.REGISTRY
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
"""No `*_created` series: a creation time per counter and histogram child, which no query of ours reads."""

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_BUCKETS = (0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

http = RequestStats(
    ("fabric_jobs_http_requests", "REST requests answered, by route name and HTTP status code."),
    ("fabric_jobs_http_request_duration_seconds", "Time from a REST request's arrival to the end of its answer."),
    ("route", "status_code"),
    LATENCY_BUCKETS,
)
grpc = RequestStats(
    (
        "fabric_jobs_grpc_server_handled",
        "gRPC calls handled by the JobService (over the network or the in-process channel), by method and code.",
    ),
    ("fabric_jobs_grpc_server_handling_seconds", "Time the JobService took to handle a gRPC call."),
    ("grpc_method", "grpc_code"),
    LATENCY_BUCKETS,
)
REGISTRY.register(http)
REGISTRY.register(grpc)
jobs_created = Counter(
    "fabric_jobs_jobs_created", "Job instances created (not counting an idempotent repeat).", ["job_type"]
)
jobs_started = Counter("fabric_jobs_jobs_started", "Job handlers started in this process.", ["job_type"])
jobs_ended = Counter(
    "fabric_jobs_jobs_ended",
    "Job instances ended by this process, by job type and terminal status (Completed, Failed, Cancelled).",
    ["job_type", "status"],
)
handler_duration = Histogram(
    "fabric_jobs_handler_duration_seconds",
    "How long job handlers ran, from start to return (or forced stop).",
    ["job_type"],
    buckets=JOB_BUCKETS,
)
cancel_to_stop = Histogram(
    "fabric_jobs_cancel_to_stop_seconds",
    "Time from the moment a running handler was told to cancel to the moment it stopped.",
    ["job_type"],
    buckets=LATENCY_BUCKETS,
)
forced_stops = Counter(
    "fabric_jobs_forced_stops",
    "Handlers stopped by force: they ignored a cancel for longer than --cancel-grace, or outlived --shutdown-grace.",
    ["job_type"],
)
executor_lost = Counter(
    "fabric_jobs_executor_lost_jobs",
    "Running jobs ended Failed with JobExecutorLost: their process or worker stopped (reason process_lost or "
    "worker_lost), or this process shut down before they finished (reason shutdown).",
    ["reason"],
)
deadlines_exceeded = Counter(
    "fabric_jobs_deadlines_exceeded",
    "Job instances this process ended Failed for a deadline: `start` (still NotStarted at its start deadline, "
    "JobStartDeadlineExceeded) or `run` (ran past its timeout, JobTimedOut).",
    ["deadline"],
)
jobs_purged = Counter(
    "fabric_jobs_jobs_purged",
    "Terminal job instances deleted by this process with their history, past --retention or by a purge call.",
)
progress_reports = Counter(
    "fabric_jobs_progress_reports",
    "Progress reports of running handlers in this process (ctx.report_progress), written or coalesced.",
)
progress_writes = Counter(
    "fabric_jobs_progress_writes",
    "Progress reports this process wrote to the store: at most one per job per --progress-interval, the newest "
    "report then; a tight loop of reports shows here as far fewer writes than reports.",
)
rest_unknown_properties = Counter(
    "fabric_jobs_rest_unknown_properties",
    "Properties of REST Create bodies this workload does not know, passed over, by name (names past the first 64 "
    "distinct ones, or longer than 64 characters, counted as _other).",
    ["property"],
)
rest_unknown_invoke_types = Counter(
    "fabric_jobs_rest_unknown_invoke_types",
    "REST Create requests whose invokeType was none of the contract's values, taken as UnknownFutureValue.",
)
jobs_running = Gauge("fabric_jobs_jobs_running", "Job handlers running in this process now.")
jobs_waiting = Gauge(
    "fabric_jobs_jobs_waiting",
    "Job instances this process has taken to run that have not started yet (waiting for a handler thread, or to "
    "be claimed).",
)
executor_threads_busy = Gauge(
    "fabric_jobs_executor_threads_busy", "Threads of the executor's pool running a plain (non-async) handler now."
)
executor_threads_max = Gauge("fabric_jobs_executor_threads_max", "Size of the executor's thread pool (--max-threads).")
event_loop_lag = Histogram(
    "fabric_jobs_event_loop_lag_seconds",
    "How late a periodic wake-up of the event loop ran: the time the loop was blocked or too busy to run it.",
    buckets=LAG_BUCKETS,
)


class Children:
    """A metric's children by label values, looked up once: prometheus-client's labels() takes a lock and
    checks its arguments on every call, a measurable part of a request. Only for labels of bounded values."""

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: MetricWrapperBase) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


jobs_created_of = Children(jobs_created)
jobs_started_of = Children(jobs_started)
jobs_ended_of = Children(jobs_ended)
handler_duration_of = Children(handler_duration)
cancel_to_stop_of = Children(cancel_to_stop)
forced_stops_of = Children(forced_stops)
executor_lost_of = Children(executor_lost)
deadlines_exceeded_of = Children(deadlines_exceeded)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type."""
    return prometheus_client.generate_latest(REGISTRY), prometheus_client.CONTENT_TYPE_LATEST
