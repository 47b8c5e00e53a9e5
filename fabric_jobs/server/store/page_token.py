"""Page tokens of list(): opaque to clients, the same in every store.

A token is the urlsafe base64 (unpadded) of the JSON list of the last row's sort key
(create_time_ms, job_instance_id, workspace_id, item_type, item_id, job_type).
"""

from __future__ import annotations

import base64
import json

PageKey = tuple[int, str, str, str, str, str]

PAGE_KEY_COLUMNS = ("create_time_ms", "job_instance_id", "workspace_id", "item_type", "item_id", "job_type")
BEFORE_FIRST_PAGE: PageKey = (2**63 - 1, "", "", "", "", "")

_MIN_INT64, _MAX_INT64 = -(2**63), 2**63 - 1


def encode_page_token(sort_key: PageKey) -> str:
    text = json.dumps(list(sort_key), separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_page_token(token: str) -> PageKey:
    """The sort key a token names; ValueError for anything encode_page_token did not produce."""
    try:
        sort_key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, RecursionError) as exc:
        raise ValueError("invalid page token") from exc
    if (
        not isinstance(sort_key, list)
        or len(sort_key) != len(PAGE_KEY_COLUMNS)
        or type(sort_key[0]) is not int
        or not _MIN_INT64 <= sort_key[0] <= _MAX_INT64
        or not all(isinstance(part, str) for part in sort_key[1:])
    ):
        raise ValueError("invalid page token")
    create_time_ms, job_instance_id, workspace_id, item_type, item_id, job_type = sort_key
    return create_time_ms, job_instance_id, workspace_id, item_type, item_id, job_type
