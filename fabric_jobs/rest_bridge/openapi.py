"""GET {base}/openapi.json: the Jobs part of Fabric's Workload REST API, served from package data."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fabric_jobs.errors import ERRORS

ERROR_CODES: dict[str, str] = {
    row.code: f"{row.http_status}: {row.description}" if row.http_status else row.description for row in ERRORS
}


def _load() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(resources.files(__package__).joinpath("openapi.json").read_text("utf-8"))
    return document


def openapi_document(base_path: str) -> dict[str, Any]:
    document = copy.deepcopy(_load())
    document["servers"] = [{"url": base_path or "/"}]
    table = "\n".join(f"- `{code}`: {meaning}" for code, meaning in ERROR_CODES.items())
    document["info"]["description"] = (
        f"{document['info'].get('description', '')}\n\n## errorCode values sent by this workload\n\n{table}"
    )
    return document


class OpenApiEndpoint:
    def __init__(self, base_path: str) -> None:
        self._document = openapi_document(base_path)

    async def handle(self, request: Request) -> Response:
        return JSONResponse(self._document)
