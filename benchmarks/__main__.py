"""python -m benchmarks [--smoke] [--duration S] [--concurrency 1,16,64] [--stored ...] [--out DIR] [--only ROWS]

Starts `fabric-jobs serve` and the baseline app as separate processes on loopback (on SQLite, then on
PostgreSQL with `fabric-jobs grpc` replicas and `fabric-jobs worker` processes), loads them from other
processes, prints a Markdown report and writes results.md, results.json and results.png.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import fairness, pg_scenarios, plot, report, scenarios
from benchmarks.options import Options, parse
from benchmarks.results import Results


def _settings(options: Options) -> dict[str, object]:
    return {
        "duration_s": options.duration,
        "warmup_s": options.warmup,
        "concurrency": list(options.concurrency),
        "stored": list(options.stored),
        "cancel_jobs": options.cancel_jobs,
        "pg_stored": list(options.pg_stored),
        "pg_stop_jobs": options.pg_stop_jobs,
        "start_jobs": options.start_jobs,
        "fair_jobs": options.fair_jobs,
        "smoke": options.smoke,
    }


def _print_server_logs(work: Path) -> None:
    for log in sorted(work.glob("*.log")):
        print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-2000:]}", file=sys.stderr)


async def run(options: Options) -> Results:
    results = Results(machine=report.machine(), settings=_settings(options))
    results.notes.append(
        f"Cancel rows cancel a distinct running demo job with every request: {options.cancel_jobs} jobs "
        "(plus warm-up ones) are created before each measurement, which ends after them or after the duration, "
        "whichever comes first. Get rows poll a fixed set of "
        f"{options.get_jobs} running jobs. Load comes from a separate process (raw asyncio HTTP/1.1 keep-alive, "
        "one connection per concurrent request; grpc.aio on one channel)."
    )
    results.notes.append(
        "Cancel-to-stopped is the latency of a gRPC CancelJobInstance of a running cooperative job: the call "
        "returns once the job is recorded Cancelled (or after --cancel-wait), so it bounds the time to the stop."
    )
    with tempfile.TemporaryDirectory(prefix="fabric-jobs-bench-") as directory:
        work = Path(directory)
        try:
            await scenarios.throughput(options, work, results)
            await scenarios.stored(options, work, results)
            await scenarios.memory(options, work, results)
            await fairness.sqlite(options, work, results)
            await pg_scenarios.run(options, work, results)
        except BaseException:
            _print_server_logs(work)
            raise
    _note_delayed_ack(results)
    return results


def _note_delayed_ack(results: Results) -> None:
    bridge = results.throughput_of("bridge-get", 1)
    if bridge is not None and 35.0 <= bridge.p50_ms <= 50.0:
        results.notes.append(
            f"REST bridge p50 at c=1 is {bridge.p50_ms:.1f} ms, the mark of Nagle's algorithm meeting the client's "
            "delayed ACK: the server's accepted sockets lack TCP_NODELAY (asyncio sets it only when the listening "
            "socket was created with proto IPPROTO_TCP, and uvicorn writes headers and body separately)."
        )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    started = time.perf_counter()
    results = asyncio.run(run(options))
    results.notes.append(f"the whole run took {time.perf_counter() - started:.0f}s")
    text = report.markdown(results)
    report.write(results, options.out)
    plot.draw(results, options.out / "results.png")
    print(text)
    print(f"wrote {options.out / 'results.md'}, results.json and results.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
