"""GET {base}/metrics: the process's Prometheus metrics, outside the Jobs authentication like /healthz."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fabric_jobs.observability import metrics


async def prometheus_metrics(request: Request) -> Response:
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
