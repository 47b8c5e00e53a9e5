"""What a load process is asked (LoadSpec), what it answers (LoadResult), and the loop both load tools share.

A load tool runs in its own process: `run_load` starts `python -m benchmarks.<tool>_load`, writes the
spec as JSON on its stdin and reads one JSON result from its stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

ROOT = Path(__file__).resolve().parent.parent
LOAD_TIMEOUT_MARGIN_SECONDS = 120.0

Item = TypeVar("Item")


@dataclass(frozen=True)
class LoadSpec:
    """items: for http, [method, path, tenant]; for grpc, the six key fields. Not cycled: each item is used once."""

    tool: str
    target: str
    items: list[list[str]]
    cycle: bool
    concurrency: int
    duration: float
    warmup_seconds: float
    warmup_items: int = 0
    operation: str = "get"
    expect: str | None = None
    cpu_pids: tuple[int, ...] = ()
    """Processes whose CPU time (from /proc) over the measured window is reported, per request."""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    unexpected: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    first_error: str | None = None
    cpu_us_per_request: float | None = None
    """User plus system CPU time of the spec's cpu_pids over the measured window, per measured request."""
    cpu_wait_percent: float | None = None
    """Time the cpu_pids' threads were ready to run but waited for a CPU (the kernel's run-queue delay, from
    /proc/<pid>/task/*/schedstat), as a percentage of the measured window: the machine's share in the latency."""

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> LoadResult:
        return cls(**document)


def percentile(sorted_values: Sequence[int], fraction: float) -> int:
    """Nearest rank: the smallest value with at least `fraction` of the values at or below it."""
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


class _Feed(Generic[Item]):
    def __init__(self, items: Sequence[Item], cycle: bool) -> None:
        self._items = items
        self._cycle = cycle
        self._next = 0

    def take(self) -> Item | None:
        if self._next >= len(self._items):
            if not self._cycle or not self._items:
                return None
            self._next = 0
        item = self._items[self._next]
        self._next += 1
        return item


async def drive(
    spec: LoadSpec, items: Sequence[Item], calls: Sequence[Callable[[Item], Awaitable[bool]]]
) -> LoadResult:
    """Warm up, then keep every call busy until the duration ends or the items run out.

    Each call returns whether the answer was the expected one, and raises on an error.
    """
    feed = _Feed(items, spec.cycle)
    warm_until = time.perf_counter_ns() + int(spec.warmup_seconds * 1e9)
    warm_budget = len(items) if spec.cycle else spec.warmup_items

    async def warm(call: Callable[[Item], Awaitable[bool]]) -> None:
        nonlocal warm_budget
        while time.perf_counter_ns() < warm_until and warm_budget > 0:
            item = feed.take()
            if item is None:
                return
            if not spec.cycle:
                warm_budget -= 1
            with contextlib.suppress(Exception):  # warm-up errors show again in the measured window
                await call(item)

    await asyncio.gather(*(warm(call) for call in calls))

    latencies: list[int] = []
    errors = 0
    unexpected = 0
    first_error: str | None = None
    cpu_before = cpu_seconds_of(spec.cpu_pids)
    wait_before = run_queue_seconds_of(spec.cpu_pids)
    started = time.perf_counter_ns()
    deadline = started + int(spec.duration * 1e9)

    async def measure(call: Callable[[Item], Awaitable[bool]]) -> None:
        nonlocal errors, unexpected, first_error
        while True:
            sent = time.perf_counter_ns()
            if sent >= deadline:
                return
            item = feed.take()
            if item is None:
                return
            try:
                expected = await call(item)
            except Exception as exc:
                errors += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"[:300]
                continue
            latencies.append(time.perf_counter_ns() - sent)
            if not expected:
                unexpected += 1

    await asyncio.gather(*(measure(call) for call in calls))
    seconds = max(time.perf_counter_ns() - started, 1) / 1e9
    cpu = cpu_seconds_of(spec.cpu_pids) - cpu_before
    waited = run_queue_seconds_of(spec.cpu_pids) - wait_before
    latencies.sort()
    return LoadResult(
        requests=len(latencies),
        errors=errors,
        unexpected=unexpected,
        seconds=round(seconds, 4),
        rps=round(len(latencies) / seconds, 1),
        p50_ms=round(percentile(latencies, 0.50) / 1e6, 3),
        p99_ms=round(percentile(latencies, 0.99) / 1e6, 3),
        max_ms=round((latencies[-1] if latencies else 0) / 1e6, 3),
        first_error=first_error,
        cpu_us_per_request=round(cpu * 1e6 / len(latencies), 1) if spec.cpu_pids and latencies else None,
        cpu_wait_percent=round(waited * 100 / seconds, 1) if spec.cpu_pids and latencies else None,
    )


def cpu_seconds_of(pids: Sequence[int]) -> float:
    """User plus system CPU time the processes have used so far (all their threads), in seconds."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_queue_seconds_of(pids: Sequence[int]) -> float:
    """Time the processes' threads have spent runnable but waiting for a CPU so far, in seconds (0 for a thread
    whose schedstat cannot be read: it ended, or the kernel keeps no schedstats)."""
    total = 0
    for pid in pids:
        for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int(stat.read_text().split()[1])
    return total / 1e9


def read_spec() -> LoadSpec:
    return LoadSpec(**json.loads(sys.stdin.read()))


def write_result(result: LoadResult) -> None:
    sys.stdout.write(json.dumps(asdict(result)) + "\n")
    sys.stdout.flush()


async def run_load(spec: LoadSpec) -> LoadResult:
    """Run one measurement in a separate load process; raise with its stderr if it fails."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        f"benchmarks.{spec.tool}_load",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=environment,
    )
    timeout = spec.warmup_seconds + spec.duration + LOAD_TIMEOUT_MARGIN_SECONDS
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(json.dumps(asdict(spec)).encode()), timeout)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"{spec.tool}_load failed ({process.returncode}): {stderr.decode()[-2000:]}")
    return LoadResult.from_json(json.loads(stdout.decode().strip().splitlines()[-1]))
