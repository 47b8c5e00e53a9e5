"""Extract the Jobs part of Fabric's Workload REST API (reference openapi.yaml) into the bridge's openapi.json.

The reference's error types extend each other with `allOf` while each part says `additionalProperties: false`,
which no JSON Schema validator can pass (every part rejects the others' fields). They are served flattened:
each `allOf` chain as one object with the union of the properties and required fields, closed to anything else,
which is the same wire shape.

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
    return document


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
