"""results.png: latency against concurrency for each throughput row, and latency against stored jobs."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from benchmarks.results import ROW_LABELS, THROUGHPUT_ROWS, Results


def draw(results: Results, path: Path) -> None:
    figure, (by_concurrency, by_stored) = plt.subplots(1, 2, figsize=(13, 5))
    for row in THROUGHPUT_ROWS:
        measured = sorted((m.concurrency, m.result) for m in results.throughput if m.row == row)
        if not measured:
            continue
        concurrency = [c for c, _ in measured]
        (line,) = by_concurrency.plot(
            concurrency, [r.p50_ms for _, r in measured], marker="o", label=f"{ROW_LABELS[row]} p50"
        )
        by_concurrency.plot(
            concurrency, [r.p99_ms for _, r in measured], marker="x", linestyle="--", color=line.get_color()
        )
    by_concurrency.set(xscale="log", yscale="log", xlabel="concurrency", ylabel="latency ms (p50 solid, p99 dashed)")
    by_concurrency.set_title("Latency against concurrency")
    by_concurrency.grid(True, which="both", alpha=0.3)
    if results.throughput:
        by_concurrency.legend(fontsize="small")
    for operation in ("get", "cancel", "cancel running"):
        measured_stored = sorted((row.stored, row.result) for row in results.stored if row.operation == operation)
        if not measured_stored:
            continue
        stored = [n for n, _ in measured_stored]
        (line,) = by_stored.plot(stored, [r.p50_ms for _, r in measured_stored], marker="o", label=f"{operation} p50")
        by_stored.plot(
            stored, [r.p99_ms for _, r in measured_stored], marker="x", linestyle="--", color=line.get_color()
        )
    by_stored.set(xscale="log", xlabel="stored job instances", ylabel="latency ms (gRPC, concurrency 1)")
    by_stored.set_title("Latency against stored jobs (SQLite)")
    by_stored.grid(True, which="both", alpha=0.3)
    if results.stored:
        by_stored.legend(fontsize="small")
    figure.suptitle(f"fabric-jobs on {results.machine['cpu']} ({results.machine['cores']} cores)", fontsize="medium")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
