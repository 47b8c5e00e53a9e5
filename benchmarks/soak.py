"""Load and soak: a fixed rate of jobs against a real `fabric-jobs serve`, for minutes.

python -m benchmarks.soak [--minutes 10] [--rate 50] [--interval 60] [--seed S]     (exit 1 on any error)

Every 1/rate seconds a demo job is created (REST Create, 0.5 to 4 s long, a fifth of them failing) and then
polled with Get every --poll seconds until it is terminal, as Fabric polls; a fifth of the jobs are cancelled
after a random delay. The service runs as its own process on a fresh SQLite file. Printed per interval: the
requests, the errors (any answer but 200/202, a transport error, a job not terminal in time), the latency
percentiles of Create, Get and Cancel, and the server's resident memory (VmRSS from /proc/PID/status); at the
end, the growth of that memory from the end of the first interval (after warm-up) to the end.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from benchmarks.crash import TERMINAL, headers, job_path
from benchmarks.processes import ServerProcess, rss_mib, serve

JOB_DEADLINE_SECONDS = 60.0
KEEPALIVE_SECONDS = 2.0
"""The clients close idle connections before the server does (uvicorn: 5 s), as a well-behaved client does:
a request sent on a connection the server is closing at that moment fails with no answer (ReadError)."""


@dataclass
class Interval:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)

    def requests(self) -> int:
        return sum(len(values) for values in self.latencies.values()) + len(self.errors)


@dataclass
class SoakResult:
    requests: int = 0
    jobs: int = 0
    errors: list[str] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)

    @property
    def rss_growth(self) -> float:
        """Growth of the server's RSS from the end of the first interval to the end, as a fraction."""
        return self.rss_mib[-1] / self.rss_mib[0] - 1 if len(self.rss_mib) > 1 else 0.0


class Soak:
    def __init__(self, url: str, rng: random.Random, poll: float) -> None:
        limits = httpx.Limits(max_connections=64, keepalive_expiry=KEEPALIVE_SECONDS)
        self.client = httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits)
        self.rng = rng
        self.poll = poll
        self.current = Interval()
        self.jobs = 0

    async def call(self, kind: str, method: str, path: str, **options: Any) -> dict[str, Any] | None:
        started = time.perf_counter()
        try:
            response = await self.client.request(method, path, headers=headers(self.rng), **options)
        except httpx.TransportError as error:
            self.current.errors.append(f"{kind}: {error!r}")
            return None
        elapsed = time.perf_counter() - started
        if response.status_code not in (200, 202):
            self.current.errors.append(f"{kind}: {response.status_code} {response.text[:300]}")
            return None
        self.current.latencies[kind].append(elapsed)
        body: dict[str, Any] = response.json() if response.content else {}
        return body

    async def job(self) -> None:
        rng = self.rng
        self.jobs += 1
        job_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        path = job_path(job_id)
        creation: dict[str, Any] = {"durationSeconds": round(rng.uniform(0.5, 4), 2)}
        if rng.random() < 0.2:
            creation["outcome"] = "Failed"
        if await self.call("create", "POST", path, json={"invokeType": "Manual", "creationPayload": creation}) is None:
            return
        cancel_at = time.monotonic() + rng.uniform(0, 3) if rng.random() < 0.2 else None
        deadline = time.monotonic() + JOB_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            await asyncio.sleep(self.poll)
            if cancel_at is not None and time.monotonic() >= cancel_at:
                cancel_at = None
                if await self.call("cancel", "POST", path + "/cancel") is None:
                    return
            state = await self.call("get", "GET", path)
            if state is None or state.get("status") in TERMINAL:
                return
        self.current.errors.append(f"job {job_id} not terminal after {JOB_DEADLINE_SECONDS:.0f}s")


def _percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "-"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"{cuts[49] * 1000:.1f}/{cuts[94] * 1000:.1f}/{cuts[98] * 1000:.1f}"


def report_interval(number: int, interval: Interval, rss: float, seconds: float, out: TextIO) -> None:
    kinds = " ".join(f"{kind} {_percentiles(interval.latencies.get(kind, []))}" for kind in ("create", "get", "cancel"))
    print(
        f"{number:>3} {interval.requests() / seconds:>7.1f} req/s {len(interval.errors):>4} errors  "
        f"p50/p95/p99 ms: {kinds}  rss {rss:.1f} MiB",
        file=out,
        flush=True,
    )
    for error in interval.errors[:5]:
        print(f"    ERROR {error}", file=out, flush=True)


async def drive(
    server: ServerProcess, seconds: float, rate: float, interval: float, poll: float, seed: int, out: TextIO
) -> SoakResult:
    soak = Soak("http://" + server.addresses["rest"], random.Random(seed), poll)
    result = SoakResult()
    tasks: set[asyncio.Task[None]] = set()
    started = time.monotonic()
    next_report = started + interval
    number = 0
    print(
        "  # throughput          errors  latency (create / get / cancel)                      server memory", file=out
    )

    def close_interval(length: float) -> None:
        nonlocal number
        number += 1
        rss = rss_mib(server.pid)
        result.rss_mib.append(rss)
        result.requests += soak.current.requests()
        result.errors += soak.current.errors
        report_interval(number, soak.current, rss, length, out)
        soak.current = Interval()

    created = 0
    while (now := time.monotonic()) < started + seconds:
        due = started + created / rate
        if now < due:
            await asyncio.sleep(min(due, next_report) - now)
        else:
            task = asyncio.create_task(soak.job())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            created += 1
        if time.monotonic() >= next_report:
            close_interval(interval)
            next_report += interval
    if tasks:
        await asyncio.gather(*tasks)
    close_interval(max(time.monotonic() - (next_report - interval), 0.001))
    await soak.client.aclose()
    result.jobs = soak.jobs
    return result


async def run(
    seconds: float, rate: float, interval: float, poll: float, seed: int, work: Path, out: TextIO = sys.stdout
) -> SoakResult:
    server = serve(work, f"sqlite:///{work / 'jobs.db'}", "serve", "--cancel-wait", "0.2")
    await server.start()
    try:
        return await drive(server, seconds, rate, interval, poll, seed, out)
    finally:
        await server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to hold the load (default 10)")
    parser.add_argument("--rate", type=float, default=50.0, help="jobs created per second (default 50)")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds per report line (default 60)")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between two Gets of a job (default 1)")
    parser.add_argument("--seed", type=int, default=None, help="seed of every random choice (default: fresh, printed)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"soak: --minutes {args.minutes:g} --rate {args.rate:g} --poll {args.poll:g} --seed {seed}", flush=True)
    with tempfile.TemporaryDirectory(prefix="fabric-jobs-soak-") as directory:
        result = asyncio.run(run(args.minutes * 60, args.rate, args.interval, args.poll, seed, Path(directory)))
    print(
        f"{result.jobs} jobs, {result.requests} requests, {len(result.errors)} errors; server RSS "
        f"{result.rss_mib[0]:.1f} -> {result.rss_mib[-1]:.1f} MiB after the first interval ({result.rss_growth:+.1%})"
    )
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
