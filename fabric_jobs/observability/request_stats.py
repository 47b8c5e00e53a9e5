"""Counts and latency histograms of REST requests and gRPC calls, the two hottest metrics: recorded with a dict
update and a bisect, and exposed through prometheus-client as a custom collector (its own metric families and text
format). prometheus-client's Counter and Histogram take a lock per value, about a tenth of an in-process Get.

Recording happens on the event loop's thread only; a scrape from another thread copies each dict and list in one
step, which the GIL makes atomic."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector


class RequestStats(Collector):
    """`<counter>_total{what, outcome}` and `<histogram>_seconds{what}`."""

    def __init__(
        self,
        counter: tuple[str, str],
        histogram: tuple[str, str],
        labels: tuple[str, str],
        buckets: Sequence[float],
    ) -> None:
        self._counter = counter
        self._histogram = histogram
        self._labels = labels
        self._bounds = tuple(buckets)
        self._counts: dict[tuple[str, str], int] = {}
        self._latencies: dict[str, list[float]] = {}
        """Per `what`: the count of each bucket (the last one +Inf), then the sum of the observations."""

    @property
    def labels(self) -> tuple[str, str]:
        return self._labels

    def families(self) -> tuple[tuple[str, str], tuple[str, str]]:
        """The (name, help) of the counter and of the histogram."""
        return self._counter, self._histogram

    def record(self, what: str, outcome: str, seconds: float) -> None:
        key = (what, outcome)
        self._counts[key] = self._counts.get(key, 0) + 1
        latencies = self._latencies.get(what)
        if latencies is None:
            latencies = self._latencies[what] = [0.0] * (len(self._bounds) + 2)
        latencies[bisect_left(self._bounds, seconds)] += 1
        latencies[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        counter = CounterMetricFamily(*self._counter, labels=self._labels)
        for (what, outcome), total in list(self._counts.items()):
            counter.add_metric([what, outcome], total)
        yield counter
        histogram = HistogramMetricFamily(*self._histogram, labels=self._labels[:1])
        for what, latencies in list(self._latencies.items()):
            copied = list(latencies)
            cumulative = 0.0
            buckets: list[tuple[str, float]] = []
            for bound, count in zip((*map(str, self._bounds), "+Inf"), copied[:-1], strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            histogram.add_metric([what], buckets, copied[-1])
        yield histogram
