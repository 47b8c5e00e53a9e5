"""What a run measured: plain values that report.py prints and plot.py draws."""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.measure import LoadResult

ROW_LABELS = {
    "bridge-get": "REST bridge Get",
    "bridge-cancel": "REST bridge Cancel",
    "grpc-get": "gRPC direct Get",
    "grpc-cancel": "gRPC direct Cancel",
    "baseline-get": "baseline in-process store Get",
    "baseline-cancel": "baseline in-process store Cancel",
    "constant": "bare Starlette constant",
}
THROUGHPUT_ROWS = tuple(ROW_LABELS)
OTHER_ROWS = ("cancel-to-stopped", "stored", "memory")
ALL_ROWS = THROUGHPUT_ROWS + OTHER_ROWS


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
    notes: list[str] = field(default_factory=list)

    def throughput_of(self, row: str, concurrency: int) -> LoadResult | None:
        for measured in self.throughput:
            if measured.row == row and measured.concurrency == concurrency:
                return measured.result
        return None
