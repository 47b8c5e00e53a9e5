"""MSAL against the Entra stand-in: the on-behalf-of request is Entra's, refreshes use the refresh token, our
CA file wins over the environment's bundles, Entra's errors are classified and its busy answers retried."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import msal
import pytest

from fabric_jobs.identity import TokenUnavailable
from fabric_jobs.on_behalf_of.entra import (
    EntraApp,
    EntraConfigError,
    EntraSession,
    EntraSettings,
    read_client_certificate,
)
from tests import tokens
from tests.entra import JWT_BEARER, EntraStandIn, RunningEntra, entra_error
from tests.on_behalf_of.conftest import CLIENT_ID, CLIENT_SECRET, FABRIC, STORAGE, entra_app, rsa_certificate
from tests.tls import Certificates

pytestmark = pytest.mark.usefixtures("bundles_elsewhere")


def test_the_exchange_is_entras_on_behalf_of_request_and_later_tokens_use_its_refresh_token(
    entra: EntraStandIn, certificates: Certificates
) -> None:
    app = entra_app(entra, certificates)
    assertion = tokens.mint_subject_token()

    cache_text = app.exchange(tokens.CLIENT_TENANT_ID, assertion, [STORAGE])

    (exchange,) = entra.token_requests()
    assert exchange["tenant"] == tokens.CLIENT_TENANT_ID
    assert exchange["grant_type"] == JWT_BEARER
    assert exchange["requested_token_use"] == "on_behalf_of"
    assert exchange["assertion"] == assertion
    assert exchange["client_id"] == CLIENT_ID
    assert exchange["client_secret"] == CLIENT_SECRET
    assert set(exchange["scope"].split()) >= {STORAGE, "offline_access"}
    first_refresh_token = entra.issued_refresh_tokens[0]

    cache = msal.SerializableTokenCache()
    cache.deserialize(cache_text)
    application = app.application(tokens.CLIENT_TENANT_ID, cache)
    cached, changed = app.acquire(application, cache, [STORAGE])
    assert (cached.value, changed) == (entra.issued_access_tokens[0], False)
    fabric, changed = app.acquire(application, cache, [FABRIC])

    refresh = entra.token_requests()[-1]
    assert len(entra.token_requests()) == 2
    assert refresh["grant_type"] == "refresh_token"
    assert refresh["refresh_token"] == first_refresh_token
    assert "assertion" not in refresh
    assert set(refresh["scope"].split()) >= {FABRIC}
    assert refresh["client_secret"] == CLIENT_SECRET
    assert (fabric.value, changed) == (entra.issued_access_tokens[1], True)


def test_without_our_ca_file_the_environments_bundle_decides_and_the_stand_in_is_not_trusted(
    entra: EntraStandIn, certificates: Certificates
) -> None:
    app = entra_app(entra, certificates, ca_file=None)

    with pytest.raises(TokenUnavailable) as raised:
        app.exchange(tokens.CLIENT_TENANT_ID, tokens.mint_subject_token(), [STORAGE])

    assert (raised.value.error, raised.value.is_permanent) == ("entra_untrusted", True)
    assert entra.token_requests() == []


def test_a_certificate_credential_signs_the_client_assertion_entra_checks(
    certificates: Certificates, tmp_path: Path
) -> None:
    pem = rsa_certificate(tmp_path)
    certificate = read_client_certificate(pem)
    stand_in = EntraStandIn(client_id=CLIENT_ID, client_certificate_pem=certificate.certificate_pem.encode())
    running = RunningEntra(stand_in, certificates)
    try:
        app = entra_app(stand_in, certificates, client_secret=None, client_certificate=certificate)
        app.exchange(tokens.CLIENT_TENANT_ID, tokens.mint_subject_token(), [STORAGE])
    finally:
        running.close()

    (exchange,) = stand_in.token_requests()
    assert "client_secret" not in exchange
    assert exchange["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def test_a_certificate_file_without_its_key_or_a_missing_one_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EntraConfigError, match="private key is not in it"):
        read_client_certificate(rsa_certificate(tmp_path, with_key=False))
    with pytest.raises(EntraConfigError, match="No such file"):
        read_client_certificate(tmp_path / "missing.pem")
    with pytest.raises(EntraConfigError, match="exactly one app credential"):
        EntraSettings(client_id=CLIENT_ID)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (entra_error(400, "invalid_grant", 65001, "The user or administrator has not consented."), "invalid_grant"),
        (entra_error(400, "interaction_required", 50076, "MFA needed."), "interaction_required"),
        (entra_error(400, "invalid_grant", 500133, "Assertion is not within its valid time range."), "invalid_grant"),
    ],
)
def test_entras_refusals_are_permanent_with_its_code_description_and_correlation_id(
    entra: EntraStandIn, certificates: Certificates, answer: object, error: str
) -> None:
    entra.fail_next(answer)  # type: ignore[arg-type]
    assertion = tokens.mint_subject_token()

    with pytest.raises(TokenUnavailable) as raised:
        entra_app(entra, certificates).exchange(tokens.CLIENT_TENANT_ID, assertion, [STORAGE])

    body = answer.body  # type: ignore[attr-defined]
    assert (raised.value.error, raised.value.is_permanent) == (error, True)
    assert raised.value.correlation_id == body["correlation_id"]
    assert raised.value.description.startswith(f"AADSTS{body['error_codes'][0]}:")
    assert assertion not in str(raised.value)
    assert len(entra.token_requests()) == 1


def test_busy_answers_are_retried_honouring_retry_after_then_succeed(
    entra: EntraStandIn, certificates: Certificates
) -> None:
    entra.fail_next(
        entra_error(503, "temporarily_unavailable", 90006, "Busy.", **{"Retry-After": "2"}),
        entra_error(429, "temporarily_unavailable", 90055, "Throttled.", **{"Retry-After": "1"}),
        entra_error(500, "server_error", 90033, "Oops."),
    )
    waits: list[float] = []
    settings = EntraSettings(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, authority=entra.url, ca_file=certificates.ca
    )
    app = EntraApp(settings, session=EntraSession(settings, sleep=waits.append))

    app.exchange(tokens.CLIENT_TENANT_ID, tokens.mint_subject_token(), [STORAGE])

    assert waits == [2.0, 1.0, 1.0]  # Retry-After twice, then the backoff (doubled after each wait)
    assert len(entra.token_requests(JWT_BEARER)) == 4


def test_busy_answers_past_the_deadline_are_transient_with_entras_correlation_id(
    entra: EntraStandIn, certificates: Certificates
) -> None:
    answer = entra_error(503, "temporarily_unavailable", 90006, "Busy.", **{"Retry-After": "30"})
    entra.fail_next(answer)

    with pytest.raises(TokenUnavailable) as raised:
        entra_app(entra, certificates).exchange(tokens.CLIENT_TENANT_ID, tokens.mint_subject_token(), [STORAGE])

    assert (raised.value.error, raised.value.is_permanent) == ("temporarily_unavailable", False)
    assert raised.value.correlation_id == answer.body["correlation_id"]


@pytest.fixture
def silent_authority() -> Iterator[str]:
    """An address that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for connection in accepted:
            connection.close()
        listener.close()


def test_timeouts_are_retried_until_the_deadline_then_transient(
    silent_authority: str, certificates: Certificates
) -> None:
    settings = EntraSettings(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        authority=silent_authority,
        ca_file=certificates.ca,
        request_timeout_seconds=0.2,
        retry_deadline_seconds=1.0,
    )
    waits: list[float] = []
    app = EntraApp(settings, session=EntraSession(settings, sleep=waits.append))

    with pytest.raises(TokenUnavailable) as raised:
        app.exchange(tokens.CLIENT_TENANT_ID, tokens.mint_subject_token(), [STORAGE])

    assert (raised.value.error, raised.value.is_permanent) == ("temporarily_unavailable", False)
    assert raised.value.description == "Entra did not answer in time"
    assert waits == [0.25, 0.5]
