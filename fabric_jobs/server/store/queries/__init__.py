"""Named SQL queries: `-- name: <name>` blocks in the .sql files of this package, read once."""

from __future__ import annotations

import re
from importlib.resources import files

_NAME_LINE = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load_named_queries(filename: str) -> dict[str, str]:
    """The queries of `filename` by name, each without its trailing semicolon."""
    text = files(__name__).joinpath(filename).read_text(encoding="utf-8")
    parts = _NAME_LINE.split(text)
    if parts[0].strip():
        raise ValueError(f"{filename}: SQL before the first '-- name:' line")
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{filename}: query {name!r} defined twice")
        queries[name] = body.strip().removesuffix(";").rstrip()
    return queries
