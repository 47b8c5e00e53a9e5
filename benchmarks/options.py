"""The command line of `python -m benchmarks`, read once into Options."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from benchmarks.postgres import default_server
from benchmarks.results import ALL_ROWS

T = TypeVar("T")

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Options:
    smoke: bool
    duration: float
    warmup: float
    concurrency: tuple[int, ...]
    stored: tuple[int, ...]
    out: Path
    only: frozenset[str]
    cancel_jobs: int
    stop_jobs: int
    stored_running_jobs: int
    memory_jobs: int
    postgres: str
    pg_stored: tuple[int, ...]
    pg_stop_jobs: int
    start_jobs: int
    pg_running: tuple[int, ...]
    pg_running_cancels: int
    pg_fleet_cancels: int
    fair_jobs: int
    get_jobs: int = 64
    sample_keys: int = 2000


def _numbers(text: str) -> tuple[int, ...]:
    try:
        numbers = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, not {text!r}") from None
    if not numbers or min(numbers) < 1:
        raise argparse.ArgumentTypeError(f"expected numbers of at least 1, not {text!r}")
    return numbers


def _rows(text: str) -> frozenset[str]:
    rows = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = rows - set(ALL_ROWS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown rows {', '.join(sorted(unknown))}; known: {', '.join(ALL_ROWS)}")
    return rows


def parse(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Start fabric-jobs and the baselines as separate processes on loopback, load them from "
        "other processes, and print (and write as results.md, results.json, results.png) the figures.",
    )
    parser.add_argument("--smoke", action="store_true", help="a run of a few seconds that exercises every path (CI)")
    parser.add_argument("--duration", type=float, help="seconds measured per row and concurrency (default 5)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up before each measurement (default 1)")
    parser.add_argument("--concurrency", type=_numbers, help="requests in flight (default 1,16,64)")
    parser.add_argument("--stored", type=_numbers, help="stored job instances (default 1000,100000,1000000)")
    parser.add_argument("--out", type=Path, help=f"where results go (default {DEFAULT_OUT}; --smoke: a temp dir)")
    parser.add_argument("--only", type=_rows, help=f"comma-separated subset of: {', '.join(ALL_ROWS)}")
    parser.add_argument("--cancel-jobs", type=int, help="distinct running jobs per Cancel measurement (default 3000)")
    parser.add_argument("--stop-jobs", type=int, help="running jobs cancelled for cancel-to-stopped (default 500)")
    parser.add_argument("--memory-jobs", type=int, help="running jobs for the memory measurement (default 10000)")
    parser.add_argument(
        "--postgres",
        default=default_server(),
        help="PostgreSQL server for the pg-* rows; the run creates, migrates and drops its own databases "
        "fabric_jobs_bench_* there (default %(default)s, or FABRIC_JOBS_BENCH_POSTGRES)",
    )
    parser.add_argument(
        "--pg-stored", type=_numbers, help="stored job instances on PostgreSQL (default 1000,100000,1000000)"
    )
    parser.add_argument(
        "--pg-stop-jobs", type=int, help="running jobs cancelled across processes on PostgreSQL (default 200)"
    )
    parser.add_argument(
        "--start-jobs", type=int, help="quick jobs queued for each jobs-started-per-second measurement (default 3000)"
    )
    parser.add_argument(
        "--pg-running",
        type=_numbers,
        help="jobs kept running in the workers for pg-cancel-running (default 100,1000,10000)",
    )
    parser.add_argument(
        "--pg-running-cancels", type=int, help="jobs cancelled at each pg-cancel-running step (default 600)"
    )
    parser.add_argument(
        "--pg-fleet-cancels", type=int, help="jobs cancelled per concurrency by pg-fleet-cancel (default 1500)"
    )
    parser.add_argument(
        "--fair-jobs", type=int, help="quick jobs tenant A queues before tenant B's one, for fair-start (default 2000)"
    )
    args = parser.parse_args(argv)
    smoke: bool = args.smoke

    def pick(value: T | None, normal: T, small: T) -> T:
        return value if value is not None else (small if smoke else normal)

    out = (
        args.out
        if args.out is not None
        else (Path(tempfile.mkdtemp(prefix="fabric-jobs-smoke-")) if smoke else DEFAULT_OUT)
    )
    return Options(
        smoke=smoke,
        duration=pick(args.duration, 5.0, 0.3),
        warmup=pick(args.warmup, 1.0, 0.1),
        concurrency=pick(args.concurrency, (1, 16, 64), (1, 16)),
        stored=tuple(sorted(pick(args.stored, (1_000, 100_000, 1_000_000), (200, 1_000)))),
        out=out,
        only=args.only if args.only is not None else frozenset(ALL_ROWS),
        cancel_jobs=pick(args.cancel_jobs, 3000, 30),
        stop_jobs=pick(args.stop_jobs, 500, 20),
        stored_running_jobs=200 if not smoke else 20,
        memory_jobs=pick(args.memory_jobs, 10_000, 200),
        postgres=args.postgres.rstrip("/"),
        pg_stored=tuple(sorted(pick(args.pg_stored, (1_000, 100_000, 1_000_000), (200, 2_000)))),
        pg_stop_jobs=pick(args.pg_stop_jobs, 200, 20),
        start_jobs=pick(args.start_jobs, 3000, 100),
        pg_running=tuple(sorted(pick(args.pg_running, (100, 1_000, 10_000), (10, 40)))),
        pg_running_cancels=pick(args.pg_running_cancels, 600, 20),
        pg_fleet_cancels=pick(args.pg_fleet_cancels, 1500, 30),
        fair_jobs=pick(args.fair_jobs, 2000, 100),
    )
