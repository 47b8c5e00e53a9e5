"""Who asked for a job (Caller) and why a token on their behalf could not be had (TokenUnavailable).

Both are part of the handler API: `ctx.caller`, and the exception `ctx.access_token` and `ctx.credential` raise."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import jwt

from fabric_jobs.v1 import job_service_pb2 as pb


@dataclass(frozen=True, slots=True)
class Caller:
    """The user a job acts for: their tenant and object id, their user principal name when the token has one,
    and the id of the app that called on their behalf (one of Fabric's). Never a token."""

    tenant_id: str
    object_id: str
    user_principal_name: str | None
    app_id: str

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Caller:
        """From a (validated) Entra token's claims: tid, oid (else sub), upn (else preferred_username), appid or azp."""
        upn = claims.get("upn") or claims.get("preferred_username")
        return cls(
            tenant_id=str(claims.get("tid") or ""),
            object_id=str(claims.get("oid") or claims.get("sub") or ""),
            user_principal_name=upn if isinstance(upn, str) and upn else None,
            app_id=str(claims.get("appid") or claims.get("azp") or ""),
        )

    @classmethod
    def from_assertion(cls, assertion: str) -> Caller:
        """From a token the caller of the JobService validated already; ValueError for text that is not a JWT."""
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.InvalidTokenError as exc:
            raise ValueError("not a JWT") from exc
        return cls.from_claims(claims)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Caller:
        fields = json.loads(text)
        return cls(fields["tenant_id"], fields["object_id"], fields.get("user_principal_name"), fields["app_id"])


def caller_to_pb(caller: Caller) -> pb.Caller:
    return pb.Caller(
        tenant_id=caller.tenant_id,
        object_id=caller.object_id,
        user_principal_name=caller.user_principal_name or "",
        app_id=caller.app_id,
    )


def caller_from_pb(message: pb.Caller) -> Caller:
    return Caller(message.tenant_id, message.object_id, message.user_principal_name or None, message.app_id)


DEV_CALLER = Caller(
    tenant_id="00000000-0000-0000-0000-000000000000",
    object_id="00000000-0000-0000-0000-0000000000de",
    user_principal_name="dev-user@fabric-jobs.invalid",
    app_id="00000000-0000-0000-0000-000000000000",
)
"""The caller of every job created in dev mode (authentication off): clearly no real user."""


class TokenUnavailable(Exception):
    """No token on behalf of the job's user: Entra said no, could not be reached, or this service cannot ask.

    `error` is Entra's error code (invalid_grant, consent_required, interaction_required, temporarily_unavailable,
    …) or one of ours (not_configured, no_user_token, credential_unreadable); `description` Entra's description;
    `correlation_id` Entra's, for its support; `is_permanent` False when trying again later may succeed.
    Never carries a token or an assertion. Unhandled by the handler, the job ends Failed with error code
    UserTokenUnavailable, this permanence, and Entra's error and correlation id among the details.
    """

    def __init__(self, error: str, description: str, *, is_permanent: bool, correlation_id: str | None = None) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.is_permanent = is_permanent
        self.correlation_id = correlation_id
