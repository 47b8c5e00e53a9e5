"""The creation payload as JSON text, the same at both boundaries: what is accepted, how it is written
and when two payloads are the same request.

Python's json keeps integers as int (of any size) and floats as float, and keeps key order, so a
payload parsed here and written with `to_text` reaches the handler exactly as it was sent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 32
MAX_NUMBER_LENGTH = 100
RULES = (
    f"a JSON object nested at most {MAX_DEPTH} levels deep, numbers finite and at most "
    f"{MAX_NUMBER_LENGTH} characters long, text valid Unicode (no lone surrogates)"
)


class OversizedNumber:
    """Stands where a number literal longer than MAX_NUMBER_LENGTH was, so that the check can name it."""


def _bounded_int(literal: str) -> int | OversizedNumber:
    return int(literal) if len(literal) <= MAX_NUMBER_LENGTH else OversizedNumber()


def _bounded_float(literal: str) -> float | OversizedNumber:
    return float(literal) if len(literal) <= MAX_NUMBER_LENGTH else OversizedNumber()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(text: str | bytes) -> Any:
    """JSON text as Python values; NaN and Infinity are refused, oversized numbers are kept for `problem`.

    Raises ValueError (not JSON) or RecursionError (nested beyond what the parser takes)."""
    return json.loads(text, parse_constant=_reject_constant, parse_int=_bounded_int, parse_float=_bounded_float)


def problem(value: object) -> str | None:
    """Why `value` (from `loads`) cannot be a creation payload, or None."""
    if not isinstance(value, dict):
        return "must be a JSON object"
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        current, depth = pending.pop()
        if isinstance(current, dict):
            if depth > MAX_DEPTH:
                return f"is nested deeper than {MAX_DEPTH} levels"
            if not all(_is_unicode(key) for key in current):
                return "holds text that is not valid Unicode (a lone surrogate)"
            pending.extend((child, depth + 1) for child in current.values())
        elif isinstance(current, list):
            if depth > MAX_DEPTH:
                return f"is nested deeper than {MAX_DEPTH} levels"
            pending.extend((child, depth + 1) for child in current)
        elif isinstance(current, OversizedNumber):
            return f"holds a number longer than {MAX_NUMBER_LENGTH} characters"
        elif isinstance(current, float) and not math.isfinite(current):
            return "holds a number too large for a 64-bit float"
        elif isinstance(current, str) and not _is_unicode(current):
            return "holds text that is not valid Unicode (a lone surrogate)"
    return None


def parse_object(text: str | bytes) -> dict[str, Any]:
    """The payload JSON text holds; ValueError saying why it cannot be one."""
    try:
        value = loads(text)
    except (ValueError, RecursionError):
        raise ValueError(f"is not valid JSON; expected {RULES}") from None
    reason = problem(value)
    if reason is not None:
        raise ValueError(reason)
    result: dict[str, Any] = value
    return result


def to_text(payload: Mapping[str, Any]) -> str:
    """Compact JSON in the payload's own key order; integers, floats and text exactly as they are."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def canonical(payload: Mapping[str, Any]) -> str:
    """The form two payloads are compared in: sorted keys, no spaces, and a float that is a whole number
    written as that integer (JSON numbers are values: 5 and 5.0 are the same, 0.5 and 0.50 too)."""
    return json.dumps(_whole_floats_as_ints(payload), ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _whole_floats_as_ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_floats_as_ints(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_whole_floats_as_ints(child) for child in value]
    return value


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
