"""What a valid part of a job's key is, for both boundaries: ids are UUIDs, item and job types are names."""

from __future__ import annotations

import re

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,255}")

UUID_RULE = "must be a UUID"
NAME_RULE = "must be 1 to 256 letters, digits, '.', '_' or '-', starting with a letter or digit"


def is_uuid(value: str) -> bool:
    return _UUID.fullmatch(value) is not None


def is_name(value: str) -> bool:
    """An itemType or jobType."""
    return _NAME.fullmatch(value) is not None
