"""UserTokens: tokens on behalf of a job's user without Entra, for testing handlers that act for their user.

The `fabric_jobs_user_tokens` fixture gives one to the service: ctx.access_token and ctx.credential answer
each scope set with a fixed, recognisable token (`token_for`), record the scopes asked for, and raise the
TokenUnavailable given to `fail_with` instead, until it is cleared.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from fabric_jobs.identity import TokenUnavailable
from fabric_jobs.on_behalf_of.entra import Token
from fabric_jobs.on_behalf_of.tokens import CredentialStore, TokenSource
from fabric_jobs.server.model import JobKey

TOKEN_SECONDS = 3600


class UserTokens:
    """A user token provider for tests. Thread-safe: handlers ask on the service's loop, tests read from theirs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requested: list[tuple[str, ...]] = []
        self._failure: TokenUnavailable | None = None

    @staticmethod
    def token_for(*scopes: str) -> str:
        """The token every job gets for `scopes`."""
        return "fake-user-token:" + " ".join(scopes)

    @property
    def requested(self) -> list[tuple[str, ...]]:
        """The scopes of every token asked for so far, in order."""
        with self._lock:
            return list(self._requested)

    def fail_with(self, failure: TokenUnavailable | None) -> None:
        """Raise `failure` for every token asked for from now on (None: answer again)."""
        with self._lock:
            self._failure = failure

    async def first_exchange(self, key: JobKey, assertion: str, scopes: Sequence[str]) -> bytes:
        return b""

    def source(self, key: JobKey, store: CredentialStore) -> TokenSource:
        return _Source(self)

    def _token(self, scopes: tuple[str, ...]) -> Token:
        with self._lock:
            self._requested.append(scopes)
            failure = self._failure
        if failure is not None:
            raise failure
        return Token(self.token_for(*scopes), int(time.time()) + TOKEN_SECONDS)


class _Source:
    def __init__(self, tokens: UserTokens) -> None:
        self._tokens = tokens

    async def token(self, scopes: tuple[str, ...]) -> Token:
        return self._tokens._token(scopes)
