"""results.png: latency against concurrency for each throughput row, against stored jobs, and (PostgreSQL Cancel)
against jobs running in the workers."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from benchmarks.results import PG_THROUGHPUT_ROWS, ROW_LABELS, THROUGHPUT_ROWS, Results, StoredRow


def _plot_stored(axes: Axes, where: str, rows: list[StoredRow]) -> None:
    for operation in ("get", "cancel", "cancel running"):
        measured = sorted((row.stored, row.result) for row in rows if row.operation == operation)
        if not measured:
            continue
        stored = [n for n, _ in measured]
        (line,) = axes.plot(stored, [r.p50_ms for _, r in measured], marker="o", label=f"{where} {operation} p50")
        axes.plot(stored, [r.p99_ms for _, r in measured], marker="x", linestyle="--", color=line.get_color())


def _plot_running(axes: Axes, results: Results) -> None:
    measured = sorted((row.running, row.result) for row in results.pg_cancel_running)
    if measured:
        running = [n for n, _ in measured]
        (line,) = axes.plot(running, [r.p50_ms for _, r in measured], marker="o", label="REST Cancel p50")
        axes.plot(running, [r.p99_ms for _, r in measured], marker="x", linestyle="--", color=line.get_color())
        axes.legend(fontsize="small")
    concurrency = results.pg_cancel_running[0].concurrency if results.pg_cancel_running else 0
    axes.set(xscale="log", xlabel="jobs running in the workers", ylabel=f"latency ms (c={concurrency})")
    axes.set_title("PostgreSQL Cancel against running jobs (rest → 2 grpc → 2 workers)")
    axes.grid(True, which="both", alpha=0.3)


def draw(results: Results, path: Path) -> None:
    figure, (by_concurrency, by_stored, by_running) = plt.subplots(1, 3, figsize=(19, 5))
    for row in THROUGHPUT_ROWS + PG_THROUGHPUT_ROWS:
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
    for where, rows in (("SQLite", results.stored), ("PostgreSQL", results.pg_stored)):
        _plot_stored(by_stored, where, rows)
    by_stored.set(xscale="log", xlabel="stored job instances", ylabel="latency ms (gRPC, concurrency 1)")
    by_stored.set_title("Latency against stored jobs")
    by_stored.grid(True, which="both", alpha=0.3)
    if results.stored or results.pg_stored:
        by_stored.legend(fontsize="small")
    _plot_running(by_running, results)
    figure.suptitle(f"fabric-jobs on {results.machine['cpu']} ({results.machine['cores']} cores)", fontsize="medium")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
