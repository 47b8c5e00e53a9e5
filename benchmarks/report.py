"""The Markdown report (tables, ratios, targets with PASS/FAIL) and the JSON of everything measured."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.measure import LoadResult
from benchmarks.results import Results

OPERATIONS = ("get", "cancel")
NO_POSTGRES = "n/a (no PostgreSQL mode yet)"


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


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def ratios(results: Results) -> list[dict[str, Any]]:
    rows = []
    for operation in OPERATIONS:
        for concurrency in sorted({measured.concurrency for measured in results.throughput}):
            bridge = results.throughput_of(f"bridge-{operation}", concurrency)
            if bridge is None:
                continue
            baseline = results.throughput_of(f"baseline-{operation}", concurrency)
            direct = results.throughput_of(f"grpc-{operation}", concurrency)
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


def targets(results: Results) -> list[Target]:
    found: list[Target] = []
    for operation in OPERATIONS:
        for concurrency in (16, 64):
            bridge = results.throughput_of(f"bridge-{operation}", concurrency)
            baseline = results.throughput_of(f"baseline-{operation}", concurrency)
            ratio = None if bridge is None or baseline is None else _ratio(bridge.rps, baseline.rps)
            measured = (
                "not measured"
                if ratio is None or bridge is None or baseline is None
                else (f"{ratio:.2f} x ({bridge.rps:.0f} vs {baseline.rps:.0f} rps)")
            )
            found.append(
                Target(
                    f"bridge {operation} throughput, c={concurrency}",
                    "≥ 0.5 x baseline",
                    measured,
                    _verdict(None if ratio is None else ratio >= 0.5),
                )
            )
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
    found.append(Target("cancel-to-stopped p99, across processes", "≤ 250 ms", NO_POSTGRES, "n/a"))
    sizes = sorted({row.stored for row in results.stored})
    for operation in OPERATIONS:
        by_size = {row.stored: row.result for row in results.stored if row.operation == operation}
        if len(sizes) < 2 or sizes[0] not in by_size or sizes[-1] not in by_size:
            found.append(Target(f"{operation} p50 flat in stored jobs", "≤ 1.25 x p50 at 10^3", "not measured", "n/a"))
            continue
        small, large = by_size[sizes[0]], by_size[sizes[-1]]
        ratio = _ratio(large.p50_ms, small.p50_ms)
        found.append(
            Target(
                f"{operation} p50 at {sizes[-1]:,} vs {sizes[0]:,} stored",
                "≤ 1.25 x",
                f"{_fmt(ratio)} x ({large.p50_ms:.3f} vs {small.p50_ms:.3f} ms)",
                _verdict(None if ratio is None else ratio <= 1.25),
            )
        )
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
    return found


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
    if results.throughput:
        lines += ["## Throughput and latency", "", "| row | concurrency | requests | rps | p50 ms | p99 ms | errors |"]
        lines.append("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
        for row in results.throughput:
            r = row.result
            lines.append(
                _cells(
                    row.label,
                    row.concurrency,
                    r.requests,
                    f"{r.rps:.0f}",
                    f"{r.p50_ms:.2f}",
                    f"{r.p99_ms:.2f}",
                    _errors(r),
                )
            )
        lines += ["", "## Ratios (same run)", ""]
        lines.append(
            "| operation | concurrency | bridge / baseline rps | bridge / baseline p50 "
            "| bridge / gRPC rps | bridge / gRPC p50 | bridge - gRPC p50 ms |"
        )
        lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for ratio in ratios(results):
            cells = [
                _fmt(ratio[name])
                for name in (
                    "bridge_over_baseline_rps",
                    "bridge_over_baseline_p50",
                    "bridge_over_grpc_rps",
                    "bridge_over_grpc_p50",
                )
            ]
            lines.append(
                _cells(ratio["operation"], ratio["concurrency"], *cells, _fmt(ratio["bridge_minus_grpc_p50_ms"], 3))
            )
        lines.append("")
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
    lines += [f"| across processes | {NO_POSTGRES} | | | | |", ""]
    if results.stored:
        lines += ["## Stored job instances (SQLite; gRPC, concurrency 1)", ""]
        lines += [
            "| stored | operation | requests | p50 ms | p99 ms | errors |",
            "| ---: | --- | ---: | ---: | ---: | --- |",
        ]
        for stored in results.stored:
            r = stored.result
            lines.append(
                _cells(
                    f"{stored.stored:,}", stored.operation, r.requests, f"{r.p50_ms:.3f}", f"{r.p99_ms:.3f}", _errors(r)
                )
            )
        lines.append("")
    if results.memory is not None:
        memory = results.memory
        lines += ["## Memory of `fabric-jobs serve` (VmRSS)", "", "| state | RSS MiB |", "| --- | ---: |"]
        lines.append(f"| idle (after start and a few calls) | {memory.idle_mib:.1f} |")
        lines.append(f"| {memory.running_jobs:,} demo jobs running | {memory.running_mib:.1f} |")
        lines.append(f"| growth per running job | {memory.growth_kib_per_job:.1f} KiB |")
        lines.append("")
    lines += ["## Targets", "", "| target | goal | measured | result |", "| --- | --- | --- | --- |"]
    lines += [f"| {t.name} | {t.goal} | {t.measured} | {t.result} |" for t in targets(results)]
    if results.notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in results.notes]
    return "\n".join(lines) + "\n"


def to_json(results: Results) -> dict[str, Any]:
    document = asdict(results)
    for row, measured in zip(document["throughput"], results.throughput, strict=True):
        row["label"] = measured.label
    if results.memory is not None:
        document["memory"]["growth_kib_per_job"] = round(results.memory.growth_kib_per_job, 2)
    document["ratios"] = ratios(results)
    document["targets"] = [asdict(target) for target in targets(results)]
    document["cancel_to_stopped_across_processes"] = NO_POSTGRES
    return document


def write(results: Results, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(markdown(results))
    (out / "results.json").write_text(json.dumps(to_json(results), indent=2) + "\n")
