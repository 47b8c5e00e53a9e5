"""The Markdown report (tables, ratios, targets with PASS/FAIL) and the JSON of everything measured."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.measure import LoadResult
from benchmarks.results import PG_THROUGHPUT_ROWS, THROUGHPUT_ROWS, Results, StoredRow

OPERATIONS = ("get", "cancel")


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    measured: str
    result: str


def machine() -> dict[str, str]:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = "unknown"
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": load,
    }


def _errors(result: LoadResult) -> str:
    if not result.errors and not result.unexpected:
        return "0"
    return f"{result.errors} errors, {result.unexpected} unexpected"


def _cells(*cells: object) -> str:
    return "| " + " | ".join(map(str, cells)) + " |"


def _load_cells(name: str, concurrency: int, r: LoadResult) -> str:
    """A row of a throughput table: requests, rps, p50, p99, the servers' CPU per request and their wait for a CPU,
    errors."""
    cpu = "n/a" if r.cpu_us_per_request is None else f"{r.cpu_us_per_request:.0f}"
    wait = "n/a" if r.cpu_wait_percent is None else f"{r.cpu_wait_percent:.0f}"
    cells = (r.requests, f"{r.rps:.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}", cpu, wait, _errors(r))
    return _cells(name, concurrency, *cells)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def ratios(results: Results, prefix: str = "") -> list[dict[str, Any]]:
    """Bridge against baseline and against direct gRPC, per operation and concurrency; prefix "pg-" for PostgreSQL."""
    rows = []
    for operation in OPERATIONS:
        for concurrency in sorted({measured.concurrency for measured in results.throughput}):
            bridge = results.throughput_of(f"{prefix}bridge-{operation}", concurrency)
            if bridge is None:
                continue
            baseline = results.throughput_of(f"{prefix}baseline-{operation}", concurrency)
            direct = results.throughput_of(f"{prefix}grpc-{operation}", concurrency)
            rows.append(
                {
                    "operation": operation,
                    "concurrency": concurrency,
                    "bridge_over_baseline_rps": None if baseline is None else _ratio(bridge.rps, baseline.rps),
                    "bridge_over_baseline_p50": None if baseline is None else _ratio(bridge.p50_ms, baseline.p50_ms),
                    "bridge_over_grpc_rps": None if direct is None else _ratio(bridge.rps, direct.rps),
                    "bridge_over_grpc_p50": None if direct is None else _ratio(bridge.p50_ms, direct.p50_ms),
                    "bridge_minus_grpc_p50_ms": None if direct is None else bridge.p50_ms - direct.p50_ms,
                }
            )
    return rows


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def _bridge_throughput(results: Results, prefix: str, operation: str, concurrency: int, where: str) -> Target:
    bridge = results.throughput_of(f"{prefix}bridge-{operation}", concurrency)
    baseline = results.throughput_of(f"{prefix}baseline-{operation}", concurrency)
    ratio = None if bridge is None or baseline is None else _ratio(bridge.rps, baseline.rps)
    measured = (
        "not measured"
        if ratio is None or bridge is None or baseline is None
        else (f"{ratio:.2f} x ({bridge.rps:.0f} vs {baseline.rps:.0f} rps)")
    )
    return Target(
        f"bridge {operation} throughput{where}, c={concurrency}",
        f"≥ 0.5 x {where.removeprefix(', ') + ' ' if where else ''}baseline",
        measured,
        _verdict(None if ratio is None else ratio >= 0.5),
    )


def _cross_process_stop(results: Results, concurrency: int) -> Target:
    stop = next((stop for stop in results.pg_cancel_to_stopped if stop.concurrency == concurrency), None)
    name = f"cancel-to-stopped p99, across processes (PostgreSQL), c={concurrency}"
    if stop is None:
        return Target(name, "≤ 100 ms", "not measured", "n/a")
    missing = stop.sent - stop.with_end_time
    ok = stop.result.p99_ms <= 100.0 and stop.result.unexpected + stop.result.errors == 0 and missing == 0
    measured = f"{stop.result.p99_ms:.2f} ms ({stop.result.unexpected} not Cancelled, {missing} without end time)"
    return Target(name, "≤ 100 ms", measured, _verdict(ok))


def _fleet_throughput(results: Results, concurrency: int) -> Target:
    fleet = results.throughput_of("pg-fleet-cancel", concurrency)
    baseline = results.throughput_of("pg-baseline-cancel", concurrency)
    ratio = None if fleet is None or baseline is None else _ratio(fleet.rps, baseline.rps)
    measured = (
        "not measured"
        if ratio is None or fleet is None or baseline is None
        else f"{ratio:.2f} x ({fleet.rps:.0f} vs {baseline.rps:.0f} rps)"
    )
    return Target(
        f"REST cancel throughput, rest → 2 grpc → 2 workers, c={concurrency}",
        "≥ 0.5 x PostgreSQL baseline",
        measured,
        _verdict(None if ratio is None else ratio >= 0.5),
    )


def _flat_in_running(results: Results) -> list[Target]:
    rows = sorted(results.pg_cancel_running, key=lambda row: row.running)
    if len(rows) < 2:
        return [Target("cancel flat in running jobs (PostgreSQL)", "≤ 1.25 x", "not measured", "n/a")]
    fewest, most = rows[0], rows[-1]
    rps = _ratio(fewest.result.rps, most.result.rps)
    p99 = _ratio(most.result.p99_ms, fewest.result.p99_ms)
    where = f"{most.running:,} vs {fewest.running:,} running, c={most.concurrency}"
    return [
        Target(
            f"cancel throughput, {where} (PostgreSQL)",
            "within 1.25 x",
            f"{_fmt(rps)} x fewer ({most.result.rps:.0f} vs {fewest.result.rps:.0f} rps)",
            _verdict(None if rps is None else rps <= 1.25),
        ),
        Target(
            f"cancel p99, {where} (PostgreSQL)",
            "within 1.25 x",
            f"{_fmt(p99)} x ({most.result.p99_ms:.1f} vs {fewest.result.p99_ms:.1f} ms)",
            _verdict(None if p99 is None else p99 <= 1.25),
        ),
    ]


def _cpu_over_constant(results: Results) -> list[Target]:
    """CPU per request of `serve` against the bare Starlette endpoint's, at concurrency 16 (issue 19)."""
    found = []
    constant = results.throughput_of("constant", 16)
    for operation, goal in (("get", 3.0), ("cancel", None)):
        bridge = results.throughput_of(f"bridge-{operation}", 16)
        ratio = (
            None
            if bridge is None or constant is None or not bridge.cpu_us_per_request or not constant.cpu_us_per_request
            else bridge.cpu_us_per_request / constant.cpu_us_per_request
        )
        measured = (
            "not measured"
            if ratio is None or bridge is None or constant is None
            else f"{ratio:.1f} x ({bridge.cpu_us_per_request:.0f} vs {constant.cpu_us_per_request:.0f} µs)"
        )
        found.append(
            Target(
                f"serve CPU per REST {operation} over the bare endpoint's, c=16",
                "stated" if goal is None else f"≤ {goal:.0f} x",
                measured,
                "stated" if goal is None or ratio is None else _verdict(ratio <= goal),
            )
        )
    return found


def _flat_in_stored(stored: list[StoredRow], where: str) -> list[Target]:
    found = []
    sizes = sorted({row.stored for row in stored})
    for operation in OPERATIONS:
        by_size = {row.stored: row.result for row in stored if row.operation == operation}
        if len(sizes) < 2 or sizes[0] not in by_size or sizes[-1] not in by_size:
            found.append(
                Target(f"{operation} p50 flat in stored jobs{where}", "≤ 1.25 x p50 at 10^3", "not measured", "n/a")
            )
            continue
        small, large = by_size[sizes[0]], by_size[sizes[-1]]
        ratio = _ratio(large.p50_ms, small.p50_ms)
        found.append(
            Target(
                f"{operation} p50 at {sizes[-1]:,} vs {sizes[0]:,} stored{where}",
                "≤ 1.25 x",
                f"{_fmt(ratio)} x ({large.p50_ms:.3f} vs {small.p50_ms:.3f} ms)",
                _verdict(None if ratio is None else ratio <= 1.25),
            )
        )
    return found


def targets(results: Results) -> list[Target]:
    found: list[Target] = [
        _bridge_throughput(results, "", operation, concurrency, "")
        for operation in OPERATIONS
        for concurrency in (16, 64)
    ]
    for operation in OPERATIONS:
        bridge = results.throughput_of(f"bridge-{operation}", 1)
        direct = results.throughput_of(f"grpc-{operation}", 1)
        overhead = None if bridge is None or direct is None else bridge.p50_ms - direct.p50_ms
        found.append(
            Target(
                f"bridge {operation} p50 overhead over direct gRPC, c=1",
                "≤ 1 ms",
                "not measured" if overhead is None else f"{overhead:+.3f} ms",
                _verdict(None if overhead is None else overhead <= 1.0),
            )
        )
    stop = results.cancel_to_stopped
    found.append(
        Target(
            "cancel-to-stopped p99, in-process",
            "≤ 20 ms",
            "not measured" if stop is None else f"{stop.result.p99_ms:.2f} ms ({stop.result.unexpected} not Cancelled)",
            _verdict(None if stop is None else stop.result.p99_ms <= 20.0 and stop.result.unexpected == 0),
        )
    )
    found += _flat_in_stored(results.stored, "")
    memory = results.memory
    found.append(
        Target(
            "fabric-jobs serve RSS idle",
            "< 120 MiB",
            "not measured" if memory is None else f"{memory.idle_mib:.1f} MiB",
            _verdict(None if memory is None else memory.idle_mib < 120.0),
        )
    )
    if memory is not None:
        growth = f"+{memory.growth_mib:.1f} MiB ({memory.growth_kib_per_job:.1f} KiB per job)"
        found.append(Target(f"RSS growth with {memory.running_jobs:,} running jobs", "stated", growth, "stated"))
    return found + postgres_targets(results)


def postgres_targets(results: Results) -> list[Target]:
    """The targets of issue 8 (scale-out on PostgreSQL)."""
    found = [_cross_process_stop(results, concurrency) for concurrency in (1, 64)]
    found += _flat_in_stored(results.pg_stored, " (PostgreSQL)")
    found += [_bridge_throughput(results, "pg-", "get", concurrency, ", PostgreSQL") for concurrency in (16, 64)]
    found += [_bridge_throughput(results, "pg-", "cancel", concurrency, ", PostgreSQL") for concurrency in (16, 64)]
    found += [_fleet_throughput(results, concurrency) for concurrency in (16, 64)]
    found += _flat_in_running(results)
    found += _cpu_over_constant(results)
    one, two = results.worker_rate(1), results.worker_rate(2)
    ratio = None if one is None or two is None else _ratio(two.rate, one.rate)
    found.append(
        Target(
            "jobs started per second, two workers vs one (PostgreSQL)",
            "≥ 1.6 x",
            "not measured"
            if ratio is None or one is None or two is None
            else f"{ratio:.2f} x ({two.rate:.0f} vs {one.rate:.0f} jobs/s)",
            _verdict(None if ratio is None else ratio >= 1.6),
        )
    )
    return found


def _throughput_tables(results: Results, rows: tuple[str, ...], prefix: str, title: str) -> list[str]:
    measured_rows = [row for row in results.throughput if row.row in rows]
    if not measured_rows:
        return []
    lines = [
        f"## {title}",
        "",
        "| row | concurrency | requests | rps | p50 ms | p99 ms | server CPU µs/request | server waiting for a CPU % "
        "| errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    lines += [_load_cells(row.label, row.concurrency, row.result) for row in measured_rows]
    lines += ["", f"## Ratios{' on PostgreSQL' if prefix else ''} (same run)", ""]
    lines.append(
        "| operation | concurrency | bridge / baseline rps | bridge / baseline p50 "
        "| bridge / gRPC rps | bridge / gRPC p50 | bridge - gRPC p50 ms |"
    )
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for ratio in ratios(results, prefix):
        names = ("bridge_over_baseline_rps", "bridge_over_baseline_p50", "bridge_over_grpc_rps", "bridge_over_grpc_p50")
        cells = [_fmt(ratio[name]) for name in names]
        lines.append(
            _cells(ratio["operation"], ratio["concurrency"], *cells, _fmt(ratio["bridge_minus_grpc_p50_ms"], 3))
        )
    return [*lines, ""]


def _stored_table(stored: list[StoredRow], title: str) -> list[str]:
    if not stored:
        return []
    lines = [f"## {title}", "", "| stored | operation | requests | p50 ms | p99 ms | errors |"]
    lines.append("| ---: | --- | ---: | ---: | ---: | --- |")
    for row in stored:
        r = row.result
        lines.append(
            _cells(f"{row.stored:,}", row.operation, r.requests, f"{r.p50_ms:.3f}", f"{r.p99_ms:.3f}", _errors(r))
        )
    return [*lines, ""]


def _postgres_sections(results: Results) -> list[str]:
    if results.postgres is None:
        return []
    lines = ["## PostgreSQL", "", f"Server: {results.postgres}.", ""]
    lines += _throughput_tables(
        results, PG_THROUGHPUT_ROWS, "pg-", "Throughput and latency on PostgreSQL (`serve --database postgresql://…`)"
    )
    if results.pg_cancel_running:
        lines += [
            "## Cancel against running jobs (PostgreSQL; REST through `rest` → 2 `grpc` → 2 `worker`)",
            "",
            "| jobs running besides | concurrency | requests | rps | p50 ms | p99 ms | CPU µs/request, 5 processes "
            "| waiting for a CPU %, 5 processes | errors |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        lines += [_load_cells(f"{row.running:,}", row.concurrency, row.result) for row in results.pg_cancel_running]
        lines.append("")
    lines += _stored_table(
        results.pg_stored, "Stored job instances (PostgreSQL; gRPC to a `fabric-jobs grpc` replica, concurrency 1)"
    )
    if results.worker_rates:
        lines += [
            "## Jobs started per second (PostgreSQL, `fabric-jobs worker` processes)",
            "",
            "| workers | concurrency each | jobs | jobs/s, all workers up | jobs/s, first to last start "
            "| CPU % per worker | CPU % postgres | machine busy % | database backends (share of samples) |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for rate in results.worker_rates:
            lines.append(
                _cells(
                    rate.workers,
                    rate.concurrency,
                    rate.jobs,
                    f"{rate.rate:.0f}",
                    f"{rate.whole_rate:.0f}",
                    f"{rate.worker_cpu_percent:.0f}",
                    f"{rate.postgres_cpu_percent:.0f}",
                    f"{rate.machine_busy_percent:.0f}",
                    ", ".join(rate.backend_states),
                )
            )
        lines.append("")
    return lines


def markdown(results: Results) -> str:
    m = results.machine
    lines = [
        "# fabric-jobs benchmarks",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
        f"load average at start {m['load_average_at_start']}.",
        f"Settings: {', '.join(f'{k} {v}' for k, v in results.settings.items())}.",
        "",
    ]
    lines += _throughput_tables(results, THROUGHPUT_ROWS, "", "Throughput and latency")
    lines += [
        "## Cancel to stopped (cooperative handler)",
        "",
        "| where | jobs | p50 ms | p99 ms | max ms | not Cancelled |",
    ]
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    stop = results.cancel_to_stopped
    if stop is not None:
        r = stop.result
        lines.append(
            _cells(
                "in-process (gRPC Cancel, c=1)",
                r.requests,
                f"{r.p50_ms:.2f}",
                f"{r.p99_ms:.2f}",
                f"{r.max_ms:.2f}",
                r.unexpected + r.errors,
            )
        )
    for across in results.pg_cancel_to_stopped:
        r = across.result
        lines.append(
            _cells(
                "across processes, PostgreSQL (gRPC Cancel to a `grpc` replica, job in a `worker`, "
                f"c={across.concurrency})",
                r.requests,
                f"{r.p50_ms:.2f}",
                f"{r.p99_ms:.2f}",
                f"{r.max_ms:.2f}",
                r.unexpected + r.errors,
            )
        )
    for across in results.pg_cancel_to_stopped:
        lines += [
            "",
            f"Across processes at c={across.concurrency}, afterwards in the database: {across.cancelled} of the "
            f"{across.sent} cancelled jobs (warm-up included) are Cancelled, {across.with_end_time} with an end time.",
        ]
    lines.append("")
    lines += _stored_table(results.stored, "Stored job instances (SQLite; gRPC to `serve`, concurrency 1)")
    if results.memory is not None:
        memory = results.memory
        lines += ["## Memory of `fabric-jobs serve` (VmRSS)", "", "| state | RSS MiB |", "| --- | ---: |"]
        lines.append(f"| idle (after start and a few calls) | {memory.idle_mib:.1f} |")
        lines.append(f"| {memory.running_jobs:,} demo jobs running | {memory.running_mib:.1f} |")
        lines.append(f"| growth per running job | {memory.growth_kib_per_job:.1f} KiB |")
        lines.append("")
    lines += _postgres_sections(results)
    lines += _fair_start_table(results)
    lines += ["## Targets", "", "| target | goal | measured | result |", "| --- | --- | --- | --- |"]
    lines += [f"| {t.name} | {t.goal} | {t.measured} | {t.result} |" for t in targets(results)]
    if results.notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in results.notes]
    return "\n".join(lines) + "\n"


def _fair_start_table(results: Results) -> list[str]:
    if not results.fair_starts:
        return []
    lines = [
        "## Fair tenants: one tenant's job behind another's backlog (`serve`, quick plain jobs of 0.5 s, 32 at once)",
        "",
        "| engine | A's jobs queued | B's time to start, idle ms | B's time to start behind A ms | ratio "
        "| A's jobs still NotStarted then | A's Creates took s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for fair in results.fair_starts:
        ratio = f"{fair.busy_ms / fair.idle_ms:.1f}x" if fair.idle_ms > 0 else "-"
        lines.append(
            _cells(
                fair.engine,
                f"{fair.backlog:,}",
                f"{fair.idle_ms:.1f}",
                f"{fair.busy_ms:.1f}",
                ratio,
                f"{fair.backlog_waiting_at_start:,}",
                f"{fair.creating_seconds:.2f}",
            )
        )
    return [*lines, ""]


def to_json(results: Results) -> dict[str, Any]:
    document = asdict(results)
    for row, measured in zip(document["throughput"], results.throughput, strict=True):
        row["label"] = measured.label
    if results.memory is not None:
        document["memory"]["growth_kib_per_job"] = round(results.memory.growth_kib_per_job, 2)
    document["ratios"] = ratios(results)
    document["pg_ratios"] = ratios(results, "pg-")
    document["targets"] = [asdict(target) for target in targets(results)]
    return document


def write(results: Results, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(markdown(results))
    (out / "results.json").write_text(json.dumps(to_json(results), indent=2) + "\n")
