"""Page tokens of list(): opaque to clients, the same in every store.

A token is the urlsafe base64 (unpadded) of the JSON list of the last row's sort key
(create_time_ms, job_instance_id, workspace_id, item_type, item_id, job_type), and tenant_id last for a
listing across tenants (search), whose tokens therefore never pass for a tenant's and back.
"""

from __future__ import annotations

import base64
import json
from typing import Any

PageKey = tuple[int, str, str, str, str, str]
SearchPageKey = tuple[int, str, str, str, str, str, str]

PAGE_KEY_COLUMNS = ("create_time_ms", "job_instance_id", "workspace_id", "item_type", "item_id", "job_type")
SEARCH_PAGE_KEY_COLUMNS = (*PAGE_KEY_COLUMNS, "tenant_id")
BEFORE_FIRST_PAGE: PageKey = (2**63 - 1, "", "", "", "", "")
BEFORE_FIRST_SEARCH_PAGE: SearchPageKey = (*BEFORE_FIRST_PAGE, "")

_MIN_INT64, _MAX_INT64 = -(2**63), 2**63 - 1


def encode_page_token(sort_key: PageKey | SearchPageKey) -> str:
    text = json.dumps(list(sort_key), separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_page_token(token: str) -> PageKey:
    """The sort key a token names; ValueError for anything encode_page_token did not produce."""
    create_time_ms, job_instance_id, workspace_id, item_type, item_id, job_type = _decode(token, PAGE_KEY_COLUMNS)
    return create_time_ms, job_instance_id, workspace_id, item_type, item_id, job_type


def decode_search_page_token(token: str) -> SearchPageKey:
    """The sort key of a search token; ValueError for anything else."""
    create_time_ms, job_instance_id, workspace_id, item_type, item_id, job_type, tenant_id = _decode(
        token, SEARCH_PAGE_KEY_COLUMNS
    )
    return create_time_ms, job_instance_id, workspace_id, item_type, item_id, job_type, tenant_id


def _decode(token: str, columns: tuple[str, ...]) -> list[Any]:
    try:
        sort_key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, RecursionError) as exc:
        raise ValueError("invalid page token") from exc
    if (
        not isinstance(sort_key, list)
        or len(sort_key) != len(columns)
        or type(sort_key[0]) is not int
        or not _MIN_INT64 <= sort_key[0] <= _MAX_INT64
        or not all(isinstance(part, str) for part in sort_key[1:])
    ):
        raise ValueError("invalid page token")
    return sort_key
