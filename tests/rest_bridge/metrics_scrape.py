"""Reading /metrics the way Prometheus does, with prometheus-client's own parser."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from starlette.applications import Starlette

from tests.harness import eventually
from tests.rest_bridge.client import BASE_PATH

Labels = frozenset[tuple[str, str]]


class Scrape:
    def __init__(self, text: str) -> None:
        self.families = {family.name: family for family in text_string_to_metric_families(text)}
        self.samples: list[Sample] = [sample for family in self.families.values() for sample in family.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples named `name` whose labels include `labels` (0 when there is none)."""
        wanted = set(labels.items())
        return sum(sample.value for sample in self.samples if sample.name == name and wanted <= sample.labels.items())

    def label_values(self) -> set[str]:
        return {value for sample in self.samples for value in sample.labels.values()}


def parse(text: str) -> Scrape:
    return Scrape(text)


async def scrape(app: Starlette) -> Scrape:
    """GET {base}/metrics without credentials, checked to be Prometheus' text format."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bridge") as client:
        response = await client.get(f"{BASE_PATH}/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return Scrape(response.text)


async def scrape_until(app: Starlette, condition: Callable[[Scrape], bool], within: float = 5.0) -> Scrape:
    """Scrape until `condition` holds (what a handler records as it stops comes just after its job's end)."""

    async def holding() -> Scrape | None:
        metrics = await scrape(app)
        return metrics if condition(metrics) else None

    return await eventually(holding, within=within, what="the scraped metrics' condition")
