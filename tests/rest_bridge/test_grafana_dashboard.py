"""The Grafana dashboard in docs/grafana queries only metrics that /metrics exposes, so it cannot rot."""

from __future__ import annotations

import json
import re

from fabric_jobs.server.app import JobServer
from tests.processes import REPOSITORY_ROOT
from tests.rest_bridge.metrics_scrape import Scrape, scrape
from tests.rest_bridge.test_metrics import bridge_app

DASHBOARD = REPOSITORY_ROOT / "docs" / "grafana" / "fabric-jobs.json"
METRIC_NAME = re.compile(r"\b(?:fabric_jobs|process|python)_[a-z_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",), "info": ("_info",)}


def exposed_names(metrics: Scrape) -> set[str]:
    """Every sample name /metrics has or would have, counting labelled series not yet observed."""
    names = {sample.name for sample in metrics.samples}
    for family in metrics.families.values():
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


def queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


async def test_every_metric_the_dashboard_queries_is_exposed(job_server: JobServer) -> None:
    exposed = exposed_names(await scrape(bridge_app(job_server.in_process_channel.as_channel())))
    used = {(title, name) for title, expr in queries() for name in METRIC_NAME.findall(expr)}
    assert used
    assert {(title, name) for title, name in used if name not in exposed} == set()


def test_every_panel_queries_some_metric() -> None:
    assert [title for title, expr in queries() if not METRIC_NAME.search(expr)] == []
