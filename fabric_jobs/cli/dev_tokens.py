"""`fabric-jobs dev-tokens`: tokens to try authentication locally, shaped as Fabric's SubjectAndApp pair.

It keeps an RSA key in a PEM file beside the JWKS it writes (created on the first run, reused after), and prints
on stdout a ready `Authorization:` header whose app token is app-only, from Fabric's app id, in the publisher tenant,
and whose subject token is delegated with the FabricWorkloadControl scope in the tenant given; on stderr, the
options under which a server accepts them. Never for production: whoever holds the key file can sign anything.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import shlex
import sys
import time
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from fabric_jobs.cli.option_kit import comma_separated, option, positive_float
from fabric_jobs.keys import is_uuid
from fabric_jobs.rest_bridge.auth import FABRIC_SCOPE

DEV_AUDIENCE = "api://localdev/fabric-jobs"
DEV_PUBLISHER_TENANT_ID = "0de70de7-0000-4000-8000-00000000de70"
DEV_JWKS_FILE = "fabric-jobs-dev-jwks.json"
FABRIC_APP_ID = "00000009-0000-0000-c000-000000000000"
"""The app id Fabric's tokens carry (one of the two `--auth-app-ids` accepts by default)."""
FABRIC_SERVICE_OBJECT_ID = "00000009-0000-0000-c000-0000000000de"
DEV_USER_OBJECT_ID = "de7de7de-0000-4000-8000-000000000001"


def _tenant_guid(value: str) -> str:
    if not is_uuid(value.strip()):
        raise argparse.ArgumentTypeError(f"must be a GUID (the x-ms-client-tenant-id the calls send), not {value!r}")
    return value.strip().lower()


def add_dev_tokens_command(commands: Any) -> None:
    parser = commands.add_parser(
        "dev-tokens",
        help="write a local JWKS and print a SubjectAndApp Authorization header it signs, to try authentication",
        description="Write a JWKS (--auth-jwks-file; its private key beside it, created once and then reused) and "
        "print on stdout an Authorization header whose two tokens pass every check a server without --dev makes, "
        "for calls of --tenant. stderr says the server options that accept them; the --auth-… options and their "
        "environment variables are the server's, so that both agree. For local tests only.",
    )
    option(
        parser,
        "--tenant",
        "the caller's tenant id (GUID), sent as x-ms-client-tenant-id (required)",
        None,
        _tenant_guid,
    )
    option(parser, "--auth-jwks-file", "the JWKS to write (default: %(default)s)", DEV_JWKS_FILE)
    option(parser, "--auth-audience", f"the tokens' audience (default: {DEV_AUDIENCE})", None, comma_separated)
    option(
        parser,
        "--auth-publisher-tenant-id",
        f"the tenant the app token is issued in (default: {DEV_PUBLISHER_TENANT_ID})",
        None,
        _tenant_guid,
    )
    option(parser, "--token-lifetime", "seconds the tokens are valid (default: %(default)s)", "3600", positive_float)


def private_key_file(jwks_file: pathlib.Path) -> pathlib.Path:
    return jwks_file.with_name(jwks_file.stem + ".key.pem")


def _signing_key(jwks_file: pathlib.Path) -> rsa.RSAPrivateKey:
    """The key of an earlier run, or a new one written (owner-readable only) beside the JWKS."""
    key_file = private_key_file(jwks_file)
    if key_file.exists():
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{key_file} does not hold an RSA private key")
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    return key


def _key_id(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "dev-" + hashlib.sha256(der).hexdigest()[:16]


def _write_jwks(jwks_file: pathlib.Path, key: rsa.RSAPrivateKey, kid: str) -> None:
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwks_file.write_text(json.dumps({"keys": [{**jwk, "kid": kid, "use": "sig"}]}, indent=2) + "\n")


def _token(key: rsa.RSAPrivateKey, kid: str, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def _claims(audience: str, tenant_id: str, now: int, lifetime: int, **more: str) -> dict[str, Any]:
    return {
        "aud": audience,
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "tid": tenant_id,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "ver": "1.0",
        "appid": FABRIC_APP_ID,
        **more,
    }


def make_dev_tokens(args: argparse.Namespace) -> int:
    if args.tenant is None:
        print("fabric-jobs dev-tokens: error: --tenant is required: the caller's tenant id (GUID)", file=sys.stderr)
        return 2
    jwks_file = pathlib.Path(args.auth_jwks_file)
    audience = args.auth_audience[0] if args.auth_audience else DEV_AUDIENCE
    publisher = args.auth_publisher_tenant_id or DEV_PUBLISHER_TENANT_ID
    try:
        key = _signing_key(jwks_file)
        kid = _key_id(key)
        _write_jwks(jwks_file, key, kid)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"fabric-jobs dev-tokens: error: {jwks_file}: {reason}", file=sys.stderr)
        return 2
    now, lifetime = int(time.time()), int(args.token_lifetime)
    app = _claims(
        audience, publisher, now, lifetime, idtyp="app", oid=FABRIC_SERVICE_OBJECT_ID, sub=FABRIC_SERVICE_OBJECT_ID
    )
    subject = _claims(
        audience,
        args.tenant,
        now,
        lifetime,
        idtyp="user",
        scp=FABRIC_SCOPE,
        oid=DEV_USER_OBJECT_ID,
        sub=DEV_USER_OBJECT_ID,
    )
    subject_token, app_token = _token(key, kid, subject), _token(key, kid, app)
    print(f'Authorization: SubjectAndAppToken1.0 subjectToken="{subject_token}", appToken="{app_token}"')
    until = datetime.fromtimestamp(now + lifetime, UTC).strftime("%Y-%m-%d %H:%M UTC")
    serve = shlex.join(
        [
            "fabric-jobs",
            "serve",
            "--auth-jwks-file",
            str(jwks_file),
            "--auth-audience",
            audience,
            "--auth-publisher-tenant-id",
            publisher,
        ]
    )
    print(
        f"fabric-jobs dev-tokens: an Authorization header for tenant {args.tenant} (send it with "
        f"x-ms-client-tenant-id: {args.tenant}), valid until {until}, signed by {private_key_file(jwks_file)}; "
        f"a server accepts it with:\n  {serve}\nLocal tests only: whoever holds that key file can sign any token.",
        file=sys.stderr,
    )
    return 0
