"""Fabric's response schemas as the bridge serves them (the reference's, with its allOf chains flattened), and the
check every response of the suite goes through."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import httpx
from openapi_schema_validator import OAS30ReadValidator

TIME_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_REF = "#/components/schemas/"


def packaged_document() -> dict[str, Any]:
    text = resources.files("fabric_jobs.rest_bridge").joinpath("openapi.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


_COMPONENTS = packaged_document()["components"]


def validate(instance: object, schema_name: str) -> None:
    schema = {"$ref": _REF + schema_name, "components": _COMPONENTS}
    OAS30ReadValidator(schema, format_checker=OAS30ReadValidator.FORMAT_CHECKER).validate(instance)


def _check_times(body: dict[str, Any]) -> None:
    for name in ("startTimeUtc", "endTimeUtc"):
        if name in body:
            assert TIME_FORMAT.fullmatch(body[name]), f"{name} {body[name]!r} is not ISO 8601 with ms and Z"


def check_response(response: httpx.Response) -> None:
    """Every response: an ErrorResponse for errors, an empty 202, an ItemJobInstanceState for the Jobs 200s."""
    path = response.request.url.path
    sent_request_id = response.request.headers.get("RequestId")
    if sent_request_id:
        assert response.headers.get("RequestId") == sent_request_id
    if response.status_code == 202:
        assert response.content == b""
        return
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    if response.status_code >= 400:
        validate(body, "ErrorResponse")
        assert "Traceback" not in response.text
    elif "/instances/" in path:
        assert response.status_code == 200
        validate(body, "ItemJobInstanceState")
        _check_times(body)
        if "errorDetails" in body:
            validate(body["errorDetails"], "ErrorDetails")
    elif path.endswith("/openapi.json"):
        assert body["openapi"].startswith("3.")
    else:
        assert set(body) == {"status"}
