"""Request messages that cannot be decoded (bad wire format, invalid UTF-8, nesting deeper than protobuf allows)
are INVALID_ARGUMENT like any other bad request, not UNKNOWN with the decoder's exception text.

The request deserializer of every method handler is wrapped: instead of raising, it returns an Undecodable
that says why in words a caller can act on; the wrapped method answers it before the servicer sees it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.message import DecodeError

from fabric_jobs.errors import FabricError, FieldViolation, invalid_argument

Deserializer = Callable[[bytes], Any]

MAX_NESTING = 100
"""protobuf's decoder limit on message nesting (upb's default depth)."""


class Undecodable:
    """What a wrapped deserializer returns for bytes that are not a valid request message."""

    def __init__(self, message_name: str, reason: str) -> None:
        self.message_name = message_name
        self.reason = reason

    def error(self) -> FabricError:
        return invalid_argument(
            [FieldViolation("request", f"is not a valid {self.message_name} message: {self.reason}")]
        )


def _reason(exc: DecodeError) -> str:
    text = str(exc)
    if "UTF-8" in text:
        return "a string field is not valid UTF-8"
    if "Depth" in text or "recursion" in text.lower():
        return f"it is nested more than {MAX_NESTING} levels deep"
    return "its bytes are not protocol buffers wire format"


def _message_name(deserializer: Deserializer) -> str:
    message_type = getattr(deserializer, "__self__", None)
    descriptor = getattr(message_type, "DESCRIPTOR", None)
    return str(getattr(descriptor, "full_name", "request"))


def lenient(deserializer: Deserializer | None) -> Deserializer | None:
    """`deserializer`, returning an Undecodable instead of raising on bytes it cannot decode."""
    if deserializer is None:
        return None
    name = _message_name(deserializer)

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:
            return Undecodable(name, _reason(exc) if isinstance(exc, DecodeError) else "it cannot be decoded")

    return deserialize
