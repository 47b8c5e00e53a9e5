"""ctx.credential: azure-core's token credential protocols over a job's token source.

UserCredential (sync, for plain handlers, which run in threads) and AsyncUserCredential (for async handlers)
are what `DataLakeServiceClient(url, credential=ctx.credential)` and every other Azure SDK client take.
"""

from __future__ import annotations

import asyncio
from typing import Any

from azure.core.credentials import AccessToken

from fabric_jobs.on_behalf_of.tokens import TokenSource

TOKEN_WAIT_SECONDS = 300.0
"""How long a sync get_token waits for the event loop's answer (Entra's retries included)."""


def scopes_of(scopes: tuple[str, ...]) -> tuple[str, ...]:
    """The scopes, checked: at least one, none blank. ValueError otherwise."""
    if not scopes or not all(isinstance(scope, str) and scope.strip() for scope in scopes):
        raise ValueError("name at least one scope, e.g. https://storage.azure.com/.default")
    return scopes


class UserCredential:
    """azure-core's TokenCredential (sync) on behalf of the job's user; call it from the handler's thread."""

    def __init__(self, source: TokenSource, loop: asyncio.AbstractEventLoop) -> None:
        self._source = source
        self._loop = loop

    def get_token(
        self, *scopes: str, claims: str | None = None, tenant_id: str | None = None, **kwargs: Any
    ) -> AccessToken:
        """A token for `scopes`; raises TokenUnavailable when there is none."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise RuntimeError("ctx.credential of a plain handler blocks: from async code use await ctx.access_token")
        future = asyncio.run_coroutine_threadsafe(self._source.token(scopes_of(scopes)), self._loop)
        token = future.result(TOKEN_WAIT_SECONDS)
        return AccessToken(token.value, token.expires_on)

    def close(self) -> None:
        return None

    def __enter__(self) -> UserCredential:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


class AsyncUserCredential:
    """azure-core's AsyncTokenCredential on behalf of the job's user."""

    def __init__(self, source: TokenSource) -> None:
        self._source = source

    async def get_token(
        self, *scopes: str, claims: str | None = None, tenant_id: str | None = None, **kwargs: Any
    ) -> AccessToken:
        """A token for `scopes`; raises TokenUnavailable when there is none."""
        token = await self._source.token(scopes_of(scopes))
        return AccessToken(token.value, token.expires_on)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> AsyncUserCredential:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None
