"""Extract the Jobs part of Fabric's Workload REST API (reference openapi.yaml) into the bridge's openapi.json.

The reference's error types extend each other with `allOf` while each part says `additionalProperties: false`,
which no JSON Schema validator can pass (every part rejects the others' fields). They are served flattened:
each `allOf` chain as one object with the union of the properties and required fields, closed to anything else,
which is the same wire shape.

Where this workload is more tolerant than the reference, the document says so (`tolerant`): a Create body's
properties it does not know are passed over, an invokeType string or number it does not know is taken as
UnknownFutureValue, and a request without ActivityId or RequestId gets generated ones, echoed in the response.

python scripts/generate_rest_openapi.py [PATH/TO/openapi.yaml]          # default: ../shared/reference/openapi.yaml
python scripts/generate_rest_openapi.py --check  # exit 1 if openapi.json is stale
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import sys
from typing import Any

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "fabric_jobs" / "rest_bridge" / "openapi.json"
DEFAULT_REFERENCE = ROOT.parent / "shared" / "reference" / "openapi.yaml"
_REF_PREFIX = "#/components/schemas/"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, datetime.datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def _refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["$ref"].removeprefix(_REF_PREFIX)} if isinstance(value.get("$ref"), str) else set()
        return found.union(*(_refs(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(_refs(item) for item in value))
    return set()


def flatten(schemas: dict[str, Any]) -> dict[str, Any]:
    """Each allOf chain as the union of its properties and required fields, closed to anything else."""

    def flat(name: str) -> dict[str, Any]:
        schema: dict[str, Any] = dict(schemas[name])
        parents = schema.pop("allOf", None)
        if parents is None:
            return schema
        properties: dict[str, Any] = {}
        required: list[str] = []
        for parent in parents:
            resolved = flat(parent["$ref"].removeprefix(_REF_PREFIX))
            properties.update(resolved.get("properties", {}))
            required.extend(resolved.get("required", []))
        properties.update(schema.get("properties", {}))
        required.extend(schema.get("required", []))
        schema.update(type="object", properties=properties, additionalProperties=False)
        if required:
            schema["required"] = sorted(set(required))
        return schema

    return {name: flat(name) for name in schemas}


TOLERATED_INVOKE_TYPE = (
    "The item job invoke type: one of JobInvokeType's values, or the integers 0, 1, 2 for them. Fabric adds "
    "invoke types over time: any other string or number is accepted and taken as UnknownFutureValue."
)
TOLERATED_BODY = (
    " Properties this workload does not know are passed over (Fabric adds properties over time); creationPayload "
    "keeps its rules."
)
GENERATED_ID = " When absent, the workload generates one (a UUID), logs with it and echoes it in the response."
ECHOED_HEADERS = {
    "RequestId": "The request's RequestId, as sent or as generated when the request had none.",
    "ActivityId": "The request's ActivityId, as sent or as generated when the request had none.",
}


def tolerant(document: dict[str, Any]) -> dict[str, Any]:
    """The document as this workload reads requests: see the module's docstring."""
    request = document["components"]["schemas"]["CreateItemJobInstanceRequest"]
    request["additionalProperties"] = True
    request["description"] = request.get("description", "") + TOLERATED_BODY
    request["properties"]["invokeType"] = {
        "description": TOLERATED_INVOKE_TYPE,
        "anyOf": [{"$ref": _REF_PREFIX + "JobInvokeType"}, {"type": "string"}, {"type": "number"}],
    }
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "header" and parameter["name"] in ECHOED_HEADERS:
                    parameter["required"] = False
                    parameter["description"] = parameter.get("description", "") + GENERATED_ID
            for response in operation.get("responses", {}).values():
                response["headers"] = {
                    name: {"description": text, "schema": {"type": "string"}} for name, text in ECHOED_HEADERS.items()
                }
    return document


def jobs_document(reference: dict[str, Any]) -> dict[str, Any]:
    paths = {
        path: {method: operation for method, operation in operations.items() if method != "parameters"}
        for path, operations in reference["paths"].items()
        if any(str(op.get("operationId", "")).startswith("Jobs_") for op in operations.values() if isinstance(op, dict))
    }
    schemas = reference["components"]["schemas"]
    needed: set[str] = set()
    pending = _refs(paths)
    while pending:
        name = pending.pop()
        if name not in needed:
            needed.add(name)
            pending |= _refs(schemas[name])
    document: dict[str, Any] = _plain(
        {
            "openapi": reference["openapi"],
            "info": {**reference["info"], "title": "Workload REST APIs: Jobs"},
            "servers": [{"url": "/"}],
            "tags": [{"name": "Jobs"}],
            "paths": paths,
            "components": {"schemas": flatten({name: schemas[name] for name in sorted(needed)})},
        }
    )
    return tolerant(document)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference", nargs="?", type=pathlib.Path, default=DEFAULT_REFERENCE, help="openapi.yaml")
    parser.add_argument("--check", action="store_true", help="exit 1 if the checked-in openapi.json is stale")
    args = parser.parse_args()
    if not args.reference.is_file():
        print(f"generate_rest_openapi: no reference contract at {args.reference}", file=sys.stderr)
        return 2
    fresh = json.dumps(jobs_document(yaml.safe_load(args.reference.read_text())), indent=2) + "\n"
    if args.check:
        if OUTPUT.read_text() != fresh:
            print(f"{OUTPUT.name} is stale: run python scripts/generate_rest_openapi.py")
            return 1
        print(f"{OUTPUT.name} is fresh")
        return 0
    OUTPUT.write_text(fresh)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
