"""A TokenUnavailable the handler left unhandled, as the Failed job's error details."""

from __future__ import annotations

from fabric_jobs.errors import ErrorCode, ErrorDetails, ErrorSource, ExtendedInfo
from fabric_jobs.identity import TokenUnavailable

OUR_ERRORS = frozenset({"not_configured", "no_user_token", "credential_unreadable", "entra_untrusted"})


def token_unavailable_details(exc: TokenUnavailable) -> ErrorDetails:
    """UserTokenUnavailable, permanent as Entra's error is; Entra's error, description and correlation id in
    moreDetails. Source: System for our own configuration, External while Entra may answer later, else User
    (consent, sign-in or an expired grant are the user's or their admin's to fix)."""
    if exc.error in OUR_ERRORS:
        source = ErrorSource.SYSTEM
    else:
        source = ErrorSource.USER if exc.is_permanent else ErrorSource.EXTERNAL
    parameters = () if exc.correlation_id is None else (("correlationId", exc.correlation_id),)
    return ErrorDetails(
        ErrorCode.USER_TOKEN_UNAVAILABLE,
        f"No token on behalf of the job's user: {exc}",
        source=source,
        is_permanent=exc.is_permanent,
        message_parameters=(exc.error,),
        more_details=(ExtendedInfo(exc.error, exc.description, (), parameters),),
    )
