"""Extract the Jobs part of Fabric's Workload REST API (reference openapi.yaml) into the bridge's openapi.json.

Usage: python scripts/generate_rest_openapi.py PATH/TO/openapi.yaml
"""

from __future__ import annotations

import datetime
import json
import pathlib
import sys
from typing import Any

import yaml

OUTPUT = pathlib.Path(__file__).resolve().parent.parent / "fabric_jobs" / "rest_bridge" / "openapi.json"
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
            "components": {"schemas": {name: schemas[name] for name in sorted(needed)}},
        }
    )
    return document


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    reference = yaml.safe_load(pathlib.Path(argv[1]).read_text())
    OUTPUT.write_text(json.dumps(jobs_document(reference), indent=2) + "\n")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
