"""GET {base}/openapi.json: the Jobs part of Fabric's Workload REST API, served from package data."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fabric_jobs.errors import ErrorCode

ERROR_CODES: dict[str, str] = {
    ErrorCode.INVALID_REQUEST: "400: a path parameter, header or the body is invalid; messageParameters name them",
    ErrorCode.AUTH_ERROR: "401: the SubjectAndApp Authorization header is missing or not valid",
    ErrorCode.NOT_FOUND: "404: no such path",
    ErrorCode.JOB_INSTANCE_NOT_FOUND: "404: no job instance with this tenant, workspace, item, job type and id",
    ErrorCode.METHOD_NOT_ALLOWED: "405: the path does not accept this method",
    ErrorCode.JOB_INSTANCE_CONFLICT: "409: a job instance with this key exists with a different request",
    ErrorCode.FORBIDDEN: "403: the JobService refused the call (PERMISSION_DENIED without details)",
    ErrorCode.CONFLICT: "409: the JobService aborted the call (ABORTED without details)",
    ErrorCode.TOO_MANY_REQUESTS: "429: the JobService is overloaded (RESOURCE_EXHAUSTED without details); retry",
    ErrorCode.UNSUPPORTED_JOB_TYPE: "400: the job type is not registered for the item type",
    ErrorCode.PAYLOAD_TOO_LARGE: "413: the body is larger than the configured limit",
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: "415: the Create body is not application/json",
    ErrorCode.JOB_EXECUTION_FAILED: "in errorDetails of a Failed job: its handler failed",
    ErrorCode.JOB_EXECUTOR_LOST: "in errorDetails of a Failed job: the process running it died (not permanent)",
    ErrorCode.USER_TOKEN_UNAVAILABLE: "in errorDetails of a Failed job: no token on behalf of its user (Entra's error "
    "and correlation id in moreDetails; permanent unless Entra may answer later)",
    ErrorCode.SERVICE_UNAVAILABLE: "503: the job service cannot be reached; retry",
    ErrorCode.TIMEOUT: "504: the job service did not answer within the request timeout; retry",
    ErrorCode.INTERNAL_ERROR: "500: an unexpected error; details are in the service's logs, never in the body",
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
