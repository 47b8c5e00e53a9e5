"""When a failed call is tried again: a policy per call (attempts, exponential backoff with full jitter) and a
budget shared by every call of a client, so that a service in trouble is not buried under retries."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How one call is retried: at most `max_attempts` attempts in all (1: never retried), the n-th retry after a
    random delay between 0 and min(max_backoff, initial_backoff * multiplier ** (n - 1)) seconds, and never past
    the call's deadline."""

    max_attempts: int = 5
    initial_backoff: float = 0.05
    max_backoff: float = 2.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("backoffs must not be negative and the multiplier at least 1")

    def backoff(self, retry: int, rng: random.Random) -> float:
        """The delay before the `retry`-th retry (1 for the first)."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (retry - 1))
        return rng.uniform(0.0, ceiling)


NO_RETRIES = RetryPolicy(max_attempts=1)


class RetryBudget:
    """A token bucket (gRPC's retry throttling): `max_tokens` to start with, each retriable failure takes one, each
    success gives back `token_ratio`; retries are allowed only while more than half the tokens are left. With the
    defaults, ten failures in a row stop retrying until successes refill the bucket."""

    def __init__(self, max_tokens: float = 20.0, token_ratio: float = 0.1) -> None:
        if max_tokens <= 0 or token_ratio < 0:
            raise ValueError("max_tokens must be positive and token_ratio not negative")
        self.max_tokens = max_tokens
        self.token_ratio = token_ratio
        self._tokens = max_tokens
        self._lock = threading.Lock()

    @property
    def tokens(self) -> float:
        return self._tokens

    def on_success(self) -> None:
        with self._lock:
            self._tokens = min(self.max_tokens, self._tokens + self.token_ratio)

    def on_failure(self) -> None:
        with self._lock:
            self._tokens = max(0.0, self._tokens - 1.0)

    def allows_retry(self) -> bool:
        return self._tokens > self.max_tokens / 2
