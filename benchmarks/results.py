"""What a run measured: plain values that report.py prints and plot.py draws."""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.measure import LoadResult

SQLITE_ROW_LABELS = {
    "bridge-get": "REST bridge Get",
    "bridge-cancel": "REST bridge Cancel",
    "grpc-get": "gRPC direct Get",
    "grpc-cancel": "gRPC direct Cancel",
    "baseline-get": "baseline in-process store Get",
    "baseline-cancel": "baseline in-process store Cancel",
    "constant": "bare Starlette constant",
}
PG_ROW_LABELS = {
    "pg-bridge-get": "REST bridge Get, PostgreSQL",
    "pg-bridge-cancel": "REST bridge Cancel, PostgreSQL",
    "pg-baseline-get": "baseline in-process PostgresStore Get",
    "pg-baseline-cancel": "baseline in-process PostgresStore Cancel",
    "pg-fleet-cancel": "REST Cancel, PostgreSQL, rest → 2 grpc → 2 workers",
}
ROW_LABELS = {**SQLITE_ROW_LABELS, **PG_ROW_LABELS}
THROUGHPUT_ROWS = tuple(SQLITE_ROW_LABELS)
PG_THROUGHPUT_ROWS = tuple(PG_ROW_LABELS)
OTHER_ROWS = ("cancel-to-stopped", "stored", "memory", "fair-start")
PG_OTHER_ROWS = ("pg-cancel-to-stopped", "pg-cancel-running", "pg-stored", "pg-workers", "pg-fair-start")
PG_ROWS = PG_THROUGHPUT_ROWS + PG_OTHER_ROWS
ALL_ROWS = THROUGHPUT_ROWS + OTHER_ROWS + PG_ROWS


@dataclass(frozen=True)
class ThroughputRow:
    row: str
    concurrency: int
    result: LoadResult

    @property
    def label(self) -> str:
        return ROW_LABELS[self.row]


@dataclass(frozen=True)
class StoredRow:
    stored: int
    operation: str
    result: LoadResult


@dataclass(frozen=True)
class CancelToStopped:
    jobs: int
    result: LoadResult


@dataclass(frozen=True)
class CrossProcessStop:
    """Cancels sent to a `fabric-jobs grpc` replica of jobs running in a `fabric-jobs worker` process; afterwards,
    how many of the cancelled jobs the database holds Cancelled with an end time."""

    jobs: int
    result: LoadResult
    sent: int
    """Cancels sent, warm-up ones included."""
    cancelled: int
    with_end_time: int
    concurrency: int = 1


@dataclass(frozen=True)
class RunningCancel:
    """REST Cancel through the fleet (rest → 2 grpc → 2 workers) while `running` other jobs run in the workers."""

    running: int
    concurrency: int
    result: LoadResult


@dataclass(frozen=True)
class WorkerRate:
    """Jobs started per second by `workers` worker processes on a queue of `jobs` quick jobs.

    rate: jobs whose start_time is at or after the moment the last worker said it takes jobs, over the time from
    that moment to the last start; whole_rate: (jobs - 1) over the time from the first start to the last.
    CPU percentages over the same window: each worker's on average and every process named postgres on the
    machine together (of one core), and the machine's busy share of all its cores.
    """

    workers: int
    concurrency: int
    jobs: int
    window_jobs: int
    window_seconds: float
    rate: float
    whole_rate: float
    worker_cpu_percent: float
    postgres_cpu_percent: float
    machine_busy_percent: float
    backend_states: list[str]
    """What the database's active backends were doing (wait event, or on CPU), share of samples, most first."""


@dataclass(frozen=True)
class FairStart:
    """Tenant B's single job: its time to start (start_time - create_time, ms) on the idle service (median of a few)
    and right after tenant A queued `backlog` quick jobs; how many of A's were still NotStarted when it started."""

    engine: str
    backlog: int
    idle_ms: float
    busy_ms: float
    backlog_waiting_at_start: int
    creating_seconds: float
    """How long A's Creates took (32 at a time)."""


@dataclass(frozen=True)
class Memory:
    idle_mib: float
    running_jobs: int
    running_mib: float

    @property
    def growth_mib(self) -> float:
        return self.running_mib - self.idle_mib

    @property
    def growth_kib_per_job(self) -> float:
        return self.growth_mib * 1024 / self.running_jobs if self.running_jobs else 0.0


@dataclass
class Results:
    machine: dict[str, str]
    settings: dict[str, object]
    throughput: list[ThroughputRow] = field(default_factory=list)
    stored: list[StoredRow] = field(default_factory=list)
    cancel_to_stopped: CancelToStopped | None = None
    memory: Memory | None = None
    pg_stored: list[StoredRow] = field(default_factory=list)
    pg_cancel_to_stopped: list[CrossProcessStop] = field(default_factory=list)
    pg_cancel_running: list[RunningCancel] = field(default_factory=list)
    worker_rates: list[WorkerRate] = field(default_factory=list)
    fair_starts: list[FairStart] = field(default_factory=list)
    postgres: str | None = None
    """The PostgreSQL server's version, or why the PostgreSQL rows were not measured."""
    notes: list[str] = field(default_factory=list)

    def throughput_of(self, row: str, concurrency: int) -> LoadResult | None:
        for measured in self.throughput:
            if measured.row == row and measured.concurrency == concurrency:
                return measured.result
        return None

    def worker_rate(self, workers: int) -> WorkerRate | None:
        return next((rate for rate in self.worker_rates if rate.workers == workers), None)
