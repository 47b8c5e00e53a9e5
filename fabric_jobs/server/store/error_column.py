"""The one stored form of a job's error: the proto3 JSON of fabric_jobs.v1.ErrorDetails."""

from __future__ import annotations

from google.protobuf import json_format

from fabric_jobs.errors import ErrorDetails, details_from_pb, details_to_pb
from fabric_jobs.v1 import job_service_pb2 as pb


def error_to_column(error: ErrorDetails) -> str:
    return json_format.MessageToJson(details_to_pb(error), indent=None)


def error_from_column(text: str) -> ErrorDetails:
    return details_from_pb(json_format.Parse(text, pb.ErrorDetails()))
