"""Mint Entra-like test tokens for the SubjectAndApp header, signed by local RSA keys published in a JWKS.

A plain module, so any test can import it: `mint_app_token()` and `mint_subject_token()` give a valid
pair for `auth_settings_for(write_jwks(path))`; keyword arguments override claims, `remove` drops them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import pathlib
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from fabric_jobs.rest_bridge.auth import AuthSettings

PUBLISHER_TENANT_ID = "2b6e8f4a-5c1d-4e7f-9a3b-0c8d7e6f5a41"
CLIENT_TENANT_ID = "7c3f1e2d-8a4b-4c6d-9e0f-1a2b3c4d5e6f"
OTHER_TENANT_ID = "f0e1d2c3-b4a5-4968-8776-655443322110"
WORKLOAD_APP_ID = "9a1c5e3b-7d2f-4b8e-a6c4-3f0e9d8b7a12"
TEST_AUDIENCE = f"api://localdevinstance/{PUBLISHER_TENANT_ID}/Contoso.FinanceAnalytics"
TEST_AUDIENCES = (TEST_AUDIENCE, WORKLOAD_APP_ID)
FABRIC_APP_ID = "00000009-0000-0000-c000-000000000000"
OTHER_FABRIC_APP_ID = "d2450708-699c-41e3-8077-b0c8341509aa"
NOT_FABRIC_APP_ID = "4e8d2c6a-1b3f-4a5e-8c7d-9f0a1b2c3d4e"
USER_OBJECT_ID = "5d7e9f1a-2b4c-4d6e-8f0a-1c3e5a7b9d2f"
FABRIC_SERVICE_OBJECT_ID = "3d0b5a61-9f2e-4c8a-b7d1-6e4f2a9c0b85"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self) -> dict[str, Any]:
        """The public key as Entra publishes it: no `alg`, `use` sig."""
        jwk = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig"}


def new_signing_key(kid: str | None = None) -> SigningKey:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(kid=kid or f"test-{uuid.uuid4().hex[:12]}", private_key=private_key)


SIGNING_KEY = new_signing_key("test-signing-key-1")


def jwks_document(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [key.jwk() for key in keys or (SIGNING_KEY,)]}


def write_jwks(path: pathlib.Path, *keys: SigningKey) -> pathlib.Path:
    """Write a JWKS of `keys` (default: SIGNING_KEY) to `path` (a file, or a directory to put jwks.json in)."""
    if path.is_dir():
        path = path / "jwks.json"
    path.write_text(json.dumps(jwks_document(*keys)))
    return path


def auth_settings_for(jwks_file: pathlib.Path | None = None, **overrides: Any) -> AuthSettings:
    """AuthSettings that accept the tokens minted here."""
    fields: dict[str, Any] = {
        "audiences": TEST_AUDIENCES,
        "publisher_tenant_id": PUBLISHER_TENANT_ID,
        "jwks_file": jwks_file,
        **overrides,
    }
    return AuthSettings(**fields)


def issuer(tenant_id: str, version: int) -> str:
    if version == 1:
        return f"https://sts.windows.net/{tenant_id}/"
    return f"https://login.microsoftonline.com/{tenant_id}/v2.0"


def _claims(
    version: int, base: dict[str, Any], app_id: str, remove: Iterable[str], overrides: dict[str, Any]
) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": TEST_AUDIENCE if version == 1 else WORKLOAD_APP_ID,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "ver": f"{version}.0",
        "appid" if version == 1 else "azp": app_id,
        **base,
        **overrides,
    }
    claims.setdefault("iss", issuer(str(claims.get("tid")), version))
    for name in remove:
        claims.pop(name, None)
    return claims


def mint_app_token(
    *,
    version: int = 1,
    key: SigningKey = SIGNING_KEY,
    algorithm: str = "RS256",
    headers: dict[str, Any] | None = None,
    remove: Iterable[str] = (),
    **claims: Any,
) -> str:
    """An app-only token of a Fabric app in the publisher tenant; `claims` override (iss follows tid)."""
    base = {
        "idtyp": "app",
        "tid": PUBLISHER_TENANT_ID,
        "oid": FABRIC_SERVICE_OBJECT_ID,
        "sub": FABRIC_SERVICE_OBJECT_ID,
    }
    payload = _claims(version, base, FABRIC_APP_ID, remove, claims)
    return sign(payload, key=key, algorithm=algorithm, headers=headers)


def mint_subject_token(
    *,
    version: int = 1,
    key: SigningKey = SIGNING_KEY,
    algorithm: str = "RS256",
    headers: dict[str, Any] | None = None,
    remove: Iterable[str] = (),
    **claims: Any,
) -> str:
    """A delegated user token of the client tenant with scope FabricWorkloadControl; `claims` override."""
    base = {
        "idtyp": "user",
        "scp": "FabricWorkloadControl",
        "tid": CLIENT_TENANT_ID,
        "oid": USER_OBJECT_ID,
        "sub": "aW1hZ2luZWQtcGFpcndpc2Utc3ViamVjdA",
        "upn": "megan@contoso.example",
    }
    payload = _claims(version, base, FABRIC_APP_ID, remove, claims)
    return sign(payload, key=key, algorithm=algorithm, headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign(
    payload: dict[str, Any],
    *,
    key: SigningKey = SIGNING_KEY,
    algorithm: str = "RS256",
    headers: dict[str, Any] | None = None,
) -> str:
    """A compact JWT. `algorithm` "none" leaves it unsigned; "HS256" uses the public key's PEM as the secret.

    `headers` are merged over {"typ": "JWT", "alg": algorithm, "kid": key.kid}; a None value removes a header.
    """
    header: dict[str, Any] = {"typ": "JWT", "alg": algorithm, "kid": key.kid, **(headers or {})}
    header = {name: value for name, value in header.items() if value is not None}
    if algorithm == "RS256":
        extra = {name: value for name, value in header.items() if name != "alg"}
        return jwt.encode(payload, key.private_key, algorithm="RS256", headers=extra, sort_headers=False)
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    if algorithm == "none":
        return f"{signing_input}."
    if algorithm == "HS256":
        mac = hmac.new(key.public_pem, signing_input.encode("ascii"), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(mac)}"
    raise ValueError(f"unsupported test algorithm {algorithm!r}")


def authorization_header(subject_token: str, app_token: str) -> str:
    return f'SubjectAndAppToken1.0 subjectToken="{subject_token}", appToken="{app_token}"'
