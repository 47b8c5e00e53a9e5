"""Microsoft Entra through MSAL for Python: the on-behalf-of exchange and later silent refreshes, with the
workload's own app credentials (a client secret, or a certificate and its key).

MSAL's requests go through one requests.Session of ours, which trusts `ca_file` when one is given (also when
REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE are set, which would otherwise override a session's `verify`), bounds each
request with a timeout, and retries Entra's 5xx and 429 answers (honouring Retry-After) and timeouts with
backoff until a deadline; MSAL sees only the last answer. MSAL's own debug lines are kept off.
"""

from __future__ import annotations

import hashlib
import logging
import pathlib
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fabric_jobs.identity import TokenUnavailable

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
REQUEST_TIMEOUT_SECONDS = 10.0
RETRY_DEADLINE_SECONDS = 30.0
_FIRST_BACKOFF_SECONDS = 0.25
_MAX_BACKOFF_SECONDS = 8.0
_PERMANENT_ERRORS = frozenset(
    {
        "invalid_grant",
        "interaction_required",
        "consent_required",
        "invalid_client",
        "unauthorized_client",
        "invalid_scope",
        "invalid_request",
        "invalid_resource",
        "unsupported_grant_type",
        "access_denied",
    }
)
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)

logging.getLogger("msal").setLevel(logging.INFO)  # its DEBUG lines dump whole token requests and answers


class EntraConfigError(ValueError):
    """Entra options that cannot be used; one line, never holding a secret."""


@dataclass(frozen=True)
class ClientCertificate:
    private_key_pem: str = field(repr=False)
    thumbprint: str
    certificate_pem: str


@dataclass(frozen=True)
class EntraSettings:
    """The workload's Entra app (the one Fabric's tokens are issued to) and where Entra is."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    client_certificate: ClientCertificate | None = None
    authority: str = DEFAULT_AUTHORITY
    ca_file: pathlib.Path | None = None
    """Trust this CA bundle for Entra instead of the system's (a local stand-in in tests)."""
    request_timeout_seconds: float = REQUEST_TIMEOUT_SECONDS
    retry_deadline_seconds: float = RETRY_DEADLINE_SECONDS

    def __post_init__(self) -> None:
        if (self.client_secret is None) == (self.client_certificate is None):
            raise EntraConfigError("Entra needs exactly one app credential: a client secret or a client certificate")

    def client_credential(self) -> str | dict[str, str]:
        if self.client_certificate is not None:
            return {
                "private_key": self.client_certificate.private_key_pem,
                "thumbprint": self.client_certificate.thumbprint,
                "public_certificate": self.client_certificate.certificate_pem,
            }
        assert self.client_secret is not None
        return self.client_secret


def read_client_secret(path: pathlib.Path) -> str:
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise EntraConfigError(f"client secret file {path}: {getattr(exc, 'strerror', None) or 'not text'}") from None
    if not secret:
        raise EntraConfigError(f"client secret file {path} is empty")
    return secret


def read_client_certificate(path: pathlib.Path) -> ClientCertificate:
    """A PEM file with the app's certificate and its private key (unencrypted)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EntraConfigError(f"client certificate file {path}: {exc.strerror}") from None
    blocks = {match[1].decode(): match[0] for match in _PEM_BLOCK.finditer(data)}
    certificate_pem = blocks.get("CERTIFICATE")
    key_pem = next((pem for kind, pem in blocks.items() if kind.endswith("PRIVATE KEY")), None)
    if certificate_pem is None:
        raise EntraConfigError(f"client certificate file {path}: no PEM certificate in it")
    if key_pem is None:
        raise EntraConfigError(f"client certificate file {path}: the certificate's private key is not in it")
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem)
        private_key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        reason = "its private key is encrypted" if isinstance(exc, TypeError) else "not a readable certificate or key"
        raise EntraConfigError(f"client certificate file {path}: {reason}") from None
    public = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if public != private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise EntraConfigError(f"client certificate file {path}: the private key is not the certificate's")
    thumbprint = hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
    return ClientCertificate(key_pem.decode(), thumbprint.upper(), certificate_pem.decode())


class EntraBusy(Exception):
    """Entra still answered 5xx or 429, or could not be reached, when the retry deadline came."""

    def __init__(self, reason: str, correlation_id: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.correlation_id = correlation_id


class EntraSession(requests.Session):
    """The HTTP client MSAL is given: our CA, a timeout per request, retries until a deadline."""

    def __init__(
        self,
        settings: EntraSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._settings = settings
        self._sleep = sleep
        self._clock = clock

    def merge_environment_settings(self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict[str, Any]:
        merged: dict[str, Any] = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self._settings.ca_file is not None:
            merged["verify"] = str(self._settings.ca_file)
        return merged

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self._settings.request_timeout_seconds)
        deadline = self._clock() + self._settings.retry_deadline_seconds
        backoff = _FIRST_BACKOFF_SECONDS
        while True:
            try:
                response = super().request(method, url, *args, **kwargs)
            except requests.exceptions.SSLError:
                raise  # not Entra being busy: a CA that does not sign its certificate, which no retry changes
            except (requests.Timeout, requests.ConnectionError) as exc:
                reason = "Entra did not answer in time" if isinstance(exc, requests.Timeout) else "Entra unreachable"
                if self._clock() + backoff > deadline:
                    raise EntraBusy(reason, None) from None
                self._sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
                continue
            if response.status_code != 429 and response.status_code < 500:
                return response
            delay = _retry_after(response.headers) or backoff
            if self._clock() + delay > deadline:
                correlation = _correlation_id(response)
                response.close()
                raise EntraBusy(f"Entra answered HTTP {response.status_code}", correlation)
            response.close()
            self._sleep(delay)
            backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _correlation_id(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        body = {}
    value = body.get("correlation_id") if isinstance(body, dict) else None
    return value if isinstance(value, str) else response.headers.get("client-request-id")


def unavailable_from(result: Mapping[str, Any]) -> TokenUnavailable:
    """Entra's error answer (as MSAL returns it) as a TokenUnavailable; never holds what was sent."""
    error = str(result.get("error") or "unknown_error")
    suberror = result.get("suberror")
    permanent = error in _PERMANENT_ERRORS or suberror in _PERMANENT_ERRORS
    description = str(result.get("error_description") or "").split("\r\n")[0].strip()
    correlation = result.get("correlation_id")
    return TokenUnavailable(
        error, description, is_permanent=permanent, correlation_id=correlation if isinstance(correlation, str) else None
    )


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)
    expires_on: int


class EntraApp:
    """The workload's confidential client: one MSAL application per job's token cache, sharing one HTTP session
    and MSAL's HTTP cache (Entra's metadata is fetched once per tenant)."""

    def __init__(self, settings: EntraSettings, *, session: EntraSession | None = None) -> None:
        self.settings = settings
        self._session = session or EntraSession(settings)
        self._http_cache: dict[str, Any] = {}

    def application(self, tenant_id: str, cache: msal.SerializableTokenCache) -> msal.ConfidentialClientApplication:
        """Blocking (it may fetch the tenant's OpenID metadata); TokenUnavailable when Entra cannot be reached."""
        with _entra_failures():
            return msal.ConfidentialClientApplication(
                self.settings.client_id,
                client_credential=self.settings.client_credential(),
                authority=f"{self.settings.authority.rstrip('/')}/{tenant_id}",
                token_cache=cache,
                http_client=self._session,
                http_cache=self._http_cache,
                instance_discovery=False,
            )

    def exchange(self, tenant_id: str, assertion: str, scopes: Sequence[str]) -> str:
        """Blocking: the on-behalf-of exchange of `assertion` for `scopes`; returns the serialized MSAL token cache
        (access token, refresh token, account). TokenUnavailable when Entra says no or cannot be reached."""
        cache = msal.SerializableTokenCache()
        application = self.application(tenant_id, cache)
        with _entra_failures():
            result = application.acquire_token_on_behalf_of(assertion, list(scopes))
        if "access_token" not in result:
            raise unavailable_from(result)
        return str(cache.serialize())

    def acquire(
        self, application: msal.ConfidentialClientApplication, cache: msal.SerializableTokenCache, scopes: Sequence[str]
    ) -> tuple[Token, bool]:
        """Blocking: a token for `scopes` from the cache, refreshed with its refresh token when needed; and whether
        the cache changed (a new token or a rotated refresh token, to store again)."""
        accounts = application.get_accounts()
        if not accounts:
            raise TokenUnavailable("no_user_token", "no refresh token is kept for this job's user", is_permanent=True)
        with _entra_failures():
            result = application.acquire_token_silent_with_error(list(scopes), account=accounts[0])
        if result is None:
            raise TokenUnavailable(
                "no_user_token", "the refresh token kept for this job's user could not be used", is_permanent=True
            )
        if "access_token" not in result:
            raise unavailable_from(result)
        expires_on = int(time.time()) + int(result.get("expires_in") or 0)
        return Token(result["access_token"], expires_on), bool(cache.has_state_changed)


@contextmanager
def _entra_failures() -> Iterator[None]:
    """Network failures and unreadable answers become TokenUnavailable (transient)."""
    try:
        yield
    except EntraBusy as exc:
        raise TokenUnavailable(
            "temporarily_unavailable", exc.reason, is_permanent=False, correlation_id=exc.correlation_id
        ) from None
    except requests.exceptions.SSLError:
        raise TokenUnavailable(
            "entra_untrusted",
            "Entra's TLS certificate is not trusted here (--entra-ca-file names the CAs to trust)",
            is_permanent=True,
        ) from None
    except (requests.RequestException, ValueError) as exc:
        raise TokenUnavailable(
            "entra_unreachable", f"Entra could not be asked ({type(exc).__name__})", is_permanent=False
        ) from None
