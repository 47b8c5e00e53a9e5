"""The workload's own logic, free of fabric-jobs: a least-squares linear trend, extended step by step."""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def trend(history: Sequence[float]) -> tuple[float, float]:
    """Intercept and slope of the least-squares line through (0, history[0]), (1, history[1]), ..."""
    count = len(history)
    mean_x = (count - 1) / 2
    mean_y = sum(history) / count
    spread = sum((x - mean_x) ** 2 for x in range(count))
    slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(history)) / spread
    return mean_y - slope * mean_x, slope


def extend(history: Sequence[float], horizon: int) -> Iterator[float]:
    """The next `horizon` values on the trend of `history`."""
    intercept, slope = trend(history)
    for step in range(horizon):
        yield intercept + slope * (len(history) + step)
