"""Verify Fabric's SubjectAndApp Authorization header: two Entra ID tokens, one for the app, one for the user.

Keys come from a JWKS: a local file (tests, air-gapped runs) or Entra's endpoint, cached by `kid` and
refetched for an unknown `kid` at most once per `jwks_refresh_min_interval_seconds`. Token lifetimes and
that interval are measured on one injectable clock (seconds since the epoch, `time.time` by default).
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt

from fabric_jobs.identity import Caller

FABRIC_APP_IDS = frozenset({"00000009-0000-0000-c000-000000000000", "d2450708-699c-41e3-8077-b0c8341509aa"})
FABRIC_SCOPE = "FabricWorkloadControl"

_SCHEME = "subjectandapptoken1.0"
_PARAMETER = re.compile(r'\s*([A-Za-z]+)\s*=\s*"([A-Za-z0-9._~+/=-]+)"\s*')
_PARAMETER_NAMES = {"subjecttoken": "subjectToken", "apptoken": "appToken"}
_REQUIRED_CLAIMS = ["exp", "nbf", "iat", "aud", "iss", "tid"]
_LIFETIME_CLAIMS = ("exp", "nbf", "iat")
_FETCH_TIMEOUT_SECONDS = 10.0
_MAX_JWKS_BYTES = 1 << 20
_RETRY_AFTER_FAILED_FETCH_SECONDS = 5.0


@dataclass(frozen=True)
class Authenticated:
    """A call that passed: the user's validated subjectToken (for the JobService to act on their behalf) and who
    they are."""

    subject_token: str = field(repr=False)
    caller: Caller


class AuthError(Exception):
    """Authentication failed; the message says what failed and never contains a token."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class AuthSettings:
    audiences: tuple[str, ...]
    publisher_tenant_id: str
    app_ids: frozenset[str] = FABRIC_APP_IDS
    jwks_file: pathlib.Path | None = None
    jwks_url: str = "https://login.microsoftonline.com/common/discovery/v2.0/keys"
    leeway_seconds: int = 120
    jwks_refresh_min_interval_seconds: float = 300


def parse_authorization(authorization: str | None) -> tuple[str, str]:
    """The (subjectToken, appToken) of a SubjectAndAppToken1.0 header."""
    if not authorization or not authorization.strip():
        raise AuthError("Authorization header is missing")
    scheme, *rest = authorization.strip().split(None, 1)
    if scheme.lower() != _SCHEME:
        raise AuthError("Authorization header: scheme is not SubjectAndAppToken1.0")
    if not rest:
        raise AuthError("Authorization header: no tokens")
    tokens: dict[str, str] = {}
    for part in rest[0].split(","):
        match = _PARAMETER.fullmatch(part)
        if match is None:
            raise AuthError("Authorization header: malformed parameters")
        name = _PARAMETER_NAMES.get(match.group(1).lower())
        if name is None:
            raise AuthError("Authorization header: unexpected parameter")
        if name in tokens:
            raise AuthError(f"Authorization header: duplicate {name}")
        tokens[name] = match.group(2)
    for name in ("subjectToken", "appToken"):
        if name not in tokens:
            raise AuthError(f"Authorization header: missing {name}")
    return tokens["subjectToken"], tokens["appToken"]


def _guid(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _load_jwks(document: bytes) -> dict[str, jwt.PyJWK]:
    parsed = json.loads(document)
    if not isinstance(parsed, dict):
        raise ValueError("a JWKS document is a JSON object")
    key_set = jwt.PyJWKSet.from_dict(parsed)
    return {
        key.key_id: key
        for key in key_set
        if key.key_id and key.key_type == "RSA" and key.public_key_use in (None, "sig")
    }


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=_FETCH_TIMEOUT_SECONDS) as response:
        body: bytes = response.read(_MAX_JWKS_BYTES + 1)
    if len(body) > _MAX_JWKS_BYTES:
        raise ValueError("JWKS document is too large")
    return body


class Authenticator:
    def __init__(self, settings: AuthSettings, clock: Callable[[], float] = time.time) -> None:
        """Raises ValueError for settings it cannot work with, a JWKS file that cannot be read included."""
        publisher = _guid(settings.publisher_tenant_id)
        if publisher is None:
            raise ValueError(f"the publisher tenant id must be a GUID, not {settings.publisher_tenant_id!r}")
        if not settings.audiences:
            raise ValueError("audiences must not be empty")
        self._settings = settings
        self._clock = clock
        self._publisher_tenant_id = publisher
        self._app_ids = frozenset(app_id.lower() for app_id in settings.app_ids)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._lock = asyncio.Lock()
        self._last_fetch: float | None = None
        self._last_fetch_failed = False
        if settings.jwks_file is not None:
            try:
                self._keys = _load_jwks(settings.jwks_file.read_bytes())
            except (OSError, ValueError, jwt.PyJWKSetError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else str(exc)
                raise ValueError(f"JWKS file {settings.jwks_file}: {reason}") from exc
            if not self._keys:
                raise ValueError(f"JWKS file {settings.jwks_file}: it holds no RSA signing key")

    async def authenticate(self, authorization: str | None, client_tenant_id: str | None) -> Authenticated:
        """Raises AuthError unless the header carries a valid pair of a Fabric app and a user of the client tenant."""
        subject_token, app_token = parse_authorization(authorization)
        if not client_tenant_id:
            raise AuthError("x-ms-client-tenant-id header is missing")
        client_tenant = _guid(client_tenant_id)
        if client_tenant is None:
            raise AuthError("x-ms-client-tenant-id header is not a GUID")

        app_claims, app_tid, app_id = await self._verify("appToken", app_token)
        if app_claims.get("idtyp") != "app" or "scp" in app_claims:
            raise AuthError("appToken: token is not app-only")
        if app_id not in self._app_ids:
            raise AuthError("appToken: app id is not a Fabric app")
        if app_tid != self._publisher_tenant_id:
            raise AuthError("appToken: tenant is not the publisher tenant")

        subject_claims, subject_tid, subject_app_id = await self._verify("subjectToken", subject_token)
        scp = subject_claims.get("scp")
        if not isinstance(scp, str):
            raise AuthError("subjectToken: token is not delegated (no scp claim)")
        if FABRIC_SCOPE not in scp.split():
            raise AuthError(f"subjectToken: scopes do not include {FABRIC_SCOPE}")
        if subject_app_id != app_id:
            raise AuthError("subjectToken: app id does not match the appToken's")
        if subject_tid != client_tenant:
            raise AuthError("subjectToken: tenant does not match x-ms-client-tenant-id")
        if not isinstance(subject_claims.get("oid") or subject_claims.get("sub"), str):
            raise AuthError("subjectToken: token has no oid or sub claim")
        return Authenticated(subject_token, Caller.from_claims(subject_claims))

    async def _verify(self, name: str, token: str) -> tuple[dict[str, Any], str, str]:
        """The verified claims, tenant id and app id of one token."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise AuthError(f"{name}: token is malformed") from None
        if header.get("alg") != "RS256":
            raise AuthError(f"{name}: signing algorithm is not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError(f"{name}: token header has no key id")
        key = await self._key(name, kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=list(self._settings.audiences),
                options={"require": _REQUIRED_CLAIMS, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"{name}: {_describe(exc)}") from None
        self._check_lifetime(name, claims)
        tid = _guid(claims["tid"])
        if tid is None:
            raise AuthError(f"{name}: tid claim is not a GUID")
        issuer = claims["iss"]
        if issuer == f"https://sts.windows.net/{tid}/":
            app_id_claim = "appid"
        elif issuer == f"https://login.microsoftonline.com/{tid}/v2.0":
            app_id_claim = "azp"
        else:
            raise AuthError(f"{name}: issuer is not the Entra ID issuer of the token's tenant")
        app_id = _guid(claims.get(app_id_claim))
        if app_id is None:
            raise AuthError(f"{name}: token has no {app_id_claim} claim")
        return claims, tid, app_id

    def _check_lifetime(self, name: str, claims: dict[str, Any]) -> None:
        """exp, nbf and iat against the clock, each `leeway_seconds` lenient (PyJWT would read the system clock)."""
        for claim in _LIFETIME_CLAIMS:
            if isinstance(claims[claim], bool) or not isinstance(claims[claim], int | float):
                raise AuthError(f"{name}: {claim} claim is not a number")
        now = self._clock()
        leeway = self._settings.leeway_seconds
        if claims["exp"] <= now - leeway:
            raise AuthError(f"{name}: token has expired")
        if claims["nbf"] > now + leeway or claims["iat"] > now + leeway:
            raise AuthError(f"{name}: token is not yet valid")

    async def _key(self, name: str, kid: str) -> jwt.PyJWK:
        key = self._keys.get(kid)
        if key is None and self._settings.jwks_file is None:
            async with self._lock:
                key = self._keys.get(kid)
                if key is None and self._may_fetch():
                    await self._refresh()
                    key = self._keys.get(kid)
        if key is not None:
            return key
        if self._last_fetch_failed:
            raise AuthError(f"{name}: signing keys could not be fetched")
        raise AuthError(f"{name}: signing key is not known")

    def _may_fetch(self) -> bool:
        if self._last_fetch is None:
            return True
        interval = self._settings.jwks_refresh_min_interval_seconds
        if self._last_fetch_failed:
            interval = min(interval, _RETRY_AFTER_FAILED_FETCH_SECONDS)
        elapsed = self._clock() - self._last_fetch
        return not 0 <= elapsed < interval  # a clock set back must not hold off the refetch

    async def _refresh(self) -> None:
        try:
            self._keys = _load_jwks(await asyncio.to_thread(_fetch, self._settings.jwks_url))
        except urllib.error.HTTPError as exc:
            exc.close()
            self._last_fetch_failed = True
        except (OSError, ValueError, jwt.PyJWTError):
            self._last_fetch_failed = True
        else:
            self._last_fetch_failed = False
        self._last_fetch = self._clock()


def _describe(exc: jwt.InvalidTokenError) -> str:
    if isinstance(exc, jwt.InvalidAudienceError):
        return "audience is not this workload"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"token has no {exc.claim} claim"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "signature is invalid"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "signing algorithm is not allowed"
    if isinstance(exc, jwt.DecodeError):
        return "token is malformed"
    return "token is invalid"
