"""Where a job's tokens come from: the user token provider a service is configured with, and a job's source.

EntraUserTokens does the first on-behalf-of exchange at Create (while the user's assertion is fresh) and
seals the resulting MSAL token cache, refresh token included, with the job's key as associated data; a run
opens it, refreshes silently for any scope, and stores the cache again when Entra rotated its tokens. A
failed first exchange is sealed too (Entra's error, never the assertion), so the run raises it to the handler.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any, Protocol

import msal

from fabric_jobs.identity import TokenUnavailable
from fabric_jobs.keys import JobKey
from fabric_jobs.on_behalf_of.entra import EntraApp, Token
from fabric_jobs.on_behalf_of.sealing import Sealer, UnsealError

ENTRA_OPTIONS = (
    "--entra-client-id with --entra-client-secret-file or --entra-client-certificate-file, and --token-key-file"
)


class CredentialStore(Protocol):
    async def credential(self, key: JobKey) -> bytes | None:
        """The job's sealed credential material, None when it has none (or has ended)."""

    async def replace_credential(self, key: JobKey, sealed: bytes) -> None:
        """Store new material for a job that has not ended (nothing for one that has)."""


class TokenSource(Protocol):
    async def token(self, scopes: tuple[str, ...]) -> Token:
        """A token for `scopes` on behalf of the job's user; TokenUnavailable when there is none."""


class UserTokenProvider(Protocol):
    async def first_exchange(self, key: JobKey, assertion: str, scopes: Sequence[str]) -> bytes:
        """At Create: the sealed material that lets the job get tokens for the next day (or Entra's sealed refusal)."""

    def source(self, key: JobKey, store: CredentialStore) -> TokenSource:
        """The token source of one run of the job."""


class Unavailable:
    """A source that only refuses: the service cannot get user tokens, or the job has none."""

    def __init__(self, error: str, description: str) -> None:
        self._error = error
        self._description = description

    async def token(self, scopes: tuple[str, ...]) -> Token:
        raise TokenUnavailable(self._error, self._description, is_permanent=True)


NOT_CONFIGURED = Unavailable(
    "not_configured", f"this service has no Entra app credentials to get user tokens with: set {ENTRA_OPTIONS}"
)


class EntraUserTokens:
    """User tokens from Microsoft Entra, the material sealed with the operator's key."""

    def __init__(self, entra: EntraApp, sealer: Sealer) -> None:
        self.entra = entra
        self.sealer = sealer

    async def first_exchange(self, key: JobKey, assertion: str, scopes: Sequence[str]) -> bytes:
        material: dict[str, Any] = {"tenant_id": key.tenant_id}
        try:
            material["msal_cache"] = await asyncio.to_thread(self.entra.exchange, key.tenant_id, assertion, scopes)
        except TokenUnavailable as exc:
            material["error"] = {
                "error": exc.error,
                "description": exc.description,
                "is_permanent": exc.is_permanent,
                "correlation_id": exc.correlation_id,
            }
        return self.sealer.seal(key, _dump(material))

    def source(self, key: JobKey, store: CredentialStore) -> TokenSource:
        return EntraTokenSource(self, key, store)


class EntraTokenSource:
    """One run's tokens: the job's sealed material opened once, MSAL's cache kept, stored again when it changed."""

    def __init__(self, tokens: EntraUserTokens, key: JobKey, store: CredentialStore) -> None:
        self._tokens = tokens
        self._key = key
        self._store = store
        self._lock = asyncio.Lock()
        self._cache: msal.SerializableTokenCache | None = None
        self._application: msal.ConfidentialClientApplication | None = None

    async def token(self, scopes: tuple[str, ...]) -> Token:
        async with self._lock:
            if self._application is None or self._cache is None:
                self._cache, self._application = await self._open()
            cache, application = self._cache, self._application
            token, changed = await asyncio.to_thread(self._tokens.entra.acquire, application, cache, scopes)
            if changed:
                material = {"tenant_id": self._key.tenant_id, "msal_cache": cache.serialize()}
                await self._store.replace_credential(self._key, self._tokens.sealer.seal(self._key, _dump(material)))
                cache.has_state_changed = False
            return token

    async def _open(self) -> tuple[msal.SerializableTokenCache, msal.ConfidentialClientApplication]:
        sealed = await self._store.credential(self._key)
        if sealed is None:
            raise TokenUnavailable(
                "no_user_token",
                "no credential is kept for this job: its job type declares no user_scopes, or its Create carried "
                "no user token",
                is_permanent=True,
            )
        try:
            material = json.loads(self._tokens.sealer.open(self._key, sealed))
        except UnsealError as exc:
            raise TokenUnavailable("credential_unreadable", str(exc), is_permanent=True) from None
        refusal = material.get("error")
        if refusal is not None:
            raise TokenUnavailable(
                refusal["error"],
                refusal["description"],
                is_permanent=refusal["is_permanent"],
                correlation_id=refusal["correlation_id"],
            )
        cache = msal.SerializableTokenCache()
        cache.deserialize(material["msal_cache"])
        application = await asyncio.to_thread(self._tokens.entra.application, material["tenant_id"], cache)
        return cache, application


def _dump(material: dict[str, Any]) -> bytes:
    return json.dumps(material).encode()
