from __future__ import annotations

import http.server
import json
import pathlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fabric_jobs.rest_bridge.auth import Authenticator, AuthError
from tests import tokens
from tests.tokens import (
    CLIENT_TENANT_ID,
    FABRIC_APP_ID,
    NOT_FABRIC_APP_ID,
    OTHER_FABRIC_APP_ID,
    OTHER_TENANT_ID,
    PUBLISHER_TENANT_ID,
    authorization_header,
    mint_app_token,
    mint_subject_token,
)

OTHER_KEY = tokens.new_signing_key("test-signing-key-2")
LEEWAY = tokens.auth_settings_for().leeway_seconds
RETRY_AFTER_FAILED_FETCH_SECONDS = 5  # the authenticator's, however long the refetch interval


class Clock:
    """The authenticator's clock, moved by the test; it starts at the wall clock's whole second, as minted tokens do."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def pair(subject: dict[str, Any] | None = None, app: dict[str, Any] | None = None, version: int = 1) -> str:
    return authorization_header(
        mint_subject_token(version=version, **(subject or {})), mint_app_token(version=version, **(app or {}))
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def authenticator(tmp_path: pathlib.Path, clock: Clock) -> Authenticator:
    return Authenticator(tokens.auth_settings_for(tokens.write_jwks(tmp_path)), clock)


@pytest.mark.parametrize(
    ("make_header", "client_tenant"),
    [
        pytest.param(lambda: pair(version=1), CLIENT_TENANT_ID, id="v1"),
        pytest.param(lambda: pair(version=2), CLIENT_TENANT_ID, id="v2"),
        pytest.param(
            lambda: f'SubjectAndAppToken1.0   appToken = "{mint_app_token()}" ,subjectToken="{mint_subject_token()}"  ',
            CLIENT_TENANT_ID.upper(),
            id="reordered-spaced-uppercase-tenant",
        ),
        pytest.param(
            lambda: pair(subject={"azp": OTHER_FABRIC_APP_ID}, app={"azp": OTHER_FABRIC_APP_ID}, version=2),
            CLIENT_TENANT_ID,
            id="second-fabric-app",
        ),
        pytest.param(
            lambda: pair(subject={"scp": "Item.Read  FabricWorkloadControl"}, version=2),
            CLIENT_TENANT_ID,
            id="several-scopes",
        ),
        pytest.param(
            lambda: pair(subject={"sub": "the-subject", "remove": ["oid"]}), CLIENT_TENANT_ID, id="sub-without-oid"
        ),
    ],
)
async def test_valid_pair_is_accepted(
    authenticator: Authenticator, make_header: Callable[[], str], client_tenant: str
) -> None:
    await authenticator.authenticate(make_header(), client_tenant)


@pytest.mark.parametrize(
    ("moved", "outcome"),
    [
        pytest.param(3600 + LEEWAY - 1, None, id="expired-within-leeway"),
        pytest.param(3600 + LEEWAY, "subjectToken: token has expired", id="expired-beyond-leeway"),
        pytest.param(-LEEWAY, None, id="not-yet-valid-within-leeway"),
        pytest.param(-LEEWAY - 1, "appToken: token is not yet valid", id="not-yet-valid-beyond-leeway"),
    ],
)
async def test_token_lifetimes_are_checked_on_the_authenticators_clock(
    authenticator: Authenticator, clock: Clock, moved: int, outcome: str | None
) -> None:
    issued = int(clock.now)
    header = pair(
        subject={"iat": issued, "nbf": issued, "exp": issued + 3600},
        app={"iat": issued, "nbf": issued, "exp": issued + 7200},
    )
    clock.advance(moved)

    if outcome is None:
        await authenticator.authenticate(header, CLIENT_TENANT_ID)
    else:
        with pytest.raises(AuthError, match=outcome):
            await authenticator.authenticate(header, CLIENT_TENANT_ID)


def valid_app() -> str:
    return mint_app_token()


def valid_subject() -> str:
    return mint_subject_token()


def header_with(subject: str | None = None, app: str | None = None) -> str:
    return authorization_header(subject or valid_subject(), app or valid_app())


FAILURES = [
    pytest.param(lambda: None, "Authorization header is missing", id="no-header"),
    pytest.param(lambda: "", "Authorization header is missing", id="empty-header"),
    pytest.param(lambda: f"Bearer {valid_app()}", "scheme is not SubjectAndAppToken1.0", id="bearer"),
    pytest.param(
        lambda: header_with().replace("SubjectAndAppToken1.0", "SubjectAndAppToken2.0"),
        "scheme is not SubjectAndAppToken1.0",
        id="other-scheme-version",
    ),
    pytest.param(lambda: "SubjectAndAppToken1.0 ", "Authorization header: no tokens", id="scheme-only"),
    pytest.param(
        lambda: f"SubjectAndAppToken1.0 subjectToken={valid_subject()}, appToken={valid_app()}",
        "malformed parameters",
        id="unquoted",
    ),
    pytest.param(
        lambda: f'SubjectAndAppToken1.0 subjectToken="", appToken="{valid_app()}"', "malformed parameters", id="empty"
    ),
    pytest.param(
        lambda: f'SubjectAndAppToken1.0 subjectToken="{valid_subject()}" appToken="{valid_app()}"',
        "malformed parameters",
        id="no-comma",
    ),
    pytest.param(
        lambda: f'SubjectAndAppToken1.0 subjectToken="{valid_subject()}", appToken="{valid_app()}",',
        "malformed parameters",
        id="trailing-comma",
    ),
    pytest.param(
        lambda: f'SubjectAndAppToken1.0 subjectToken="{valid_subject()}", appToken="{valid_app()}", x="y"',
        "unexpected parameter",
        id="unknown-parameter",
    ),
    pytest.param(
        lambda: f'SubjectAndAppToken1.0 subjectToken="{valid_subject()}", subjectToken="{valid_subject()}"',
        "duplicate subjectToken",
        id="duplicated",
    ),
    pytest.param(
        lambda: f'SubjectAndAppToken1.0 subjectToken="{valid_subject()}"', "missing appToken", id="no-app-token"
    ),
    pytest.param(
        lambda: f'SubjectAndAppToken1.0 appToken="{valid_app()}"', "missing subjectToken", id="no-subject-token"
    ),
    pytest.param(lambda: header_with(app="not-a-jwt"), "appToken: token is malformed", id="not-a-jwt"),
    pytest.param(
        lambda: header_with(app=mint_app_token(exp=int(time.time()) - 300)),
        "appToken: token has expired",
        id="app-expired",
    ),
    pytest.param(
        lambda: header_with(subject=mint_subject_token(exp=int(time.time()) - 300)),
        "subjectToken: token has expired",
        id="subject-expired",
    ),
    pytest.param(
        lambda: header_with(app=mint_app_token(nbf=int(time.time()) + 300)),
        "appToken: token is not yet valid",
        id="not-yet-valid",
    ),
    pytest.param(
        lambda: header_with(subject=mint_subject_token(iat=int(time.time()) + 300)),
        "subjectToken: token is not yet valid",
        id="issued-in-the-future",
    ),
    pytest.param(
        lambda: header_with(app=mint_app_token(remove=["exp"])), "appToken: token has no exp claim", id="no-exp"
    ),
    pytest.param(
        lambda: header_with(subject=mint_subject_token(nbf="now")),
        "subjectToken: nbf claim is not a number",
        id="nbf-not-a-number",
    ),
    pytest.param(
        lambda: header_with(app=mint_app_token(aud="api://another-workload")),
        "appToken: audience is not this workload",
        id="wrong-audience",
    ),
    pytest.param(
        lambda: header_with(subject=mint_subject_token(remove=["aud"])),
        "subjectToken: token has no aud claim",
        id="no-audience",
    ),
    pytest.param(
        lambda: header_with(app=mint_app_token(iss=tokens.issuer(OTHER_TENANT_ID, 1))),
        "appToken: issuer is not the Entra ID issuer of the token's tenant",
        id="other-tenants-issuer",
    ),
    pytest.param(
        lambda: header_with(subject=mint_subject_token(iss=f"https://evil.example.com/{CLIENT_TENANT_ID}/v2.0")),
        "subjectToken: issuer is not the Entra ID issuer of the token's tenant",
        id="non-entra-issuer",
    ),
    pytest.param(
        lambda: header_with(subject=mint_subject_token(iss="https://login.microsoftonline.com/common/v2.0")),
        "subjectToken: issuer is not the Entra ID issuer of the token's tenant",
        id="common-issuer",
    ),
    pytest.param(
        lambda: header_with(app=mint_app_token(remove=["tid"])), "appToken: token has no tid claim", id="no-tid"
    ),
    pytest.param(
        lambda: header_with(app=mint_app_token(key=OTHER_KEY)),
        "appToken: signing key is not known",
        id="unknown-kid",
    ),
    pytest.param(
        lambda: header_with(app=mint_app_token(headers={"kid": None})),
        "appToken: token header has no key id",
        id="no-kid",
    ),
    pytest.param(
        lambda: header_with(app=mint_app_token(key=OTHER_KEY, headers={"kid": tokens.SIGNING_KEY.kid})),
        "appToken: signature is invalid",
        id="signed-by-another-key",
    ),
    pytest.param(
        lambda: header_with(subject=mint_subject_token(algorithm="none")),
        "subjectToken: signing algorithm is not allowed",
        id="alg-none",
    ),
    pytest.param(
        lambda: header_with(app=mint_app_token(algorithm="HS256")),
        "appToken: signing algorithm is not allowed",
        id="hs256-with-public-key",
    ),
    pytest.param(
        lambda: header_with(app=mint_app_token(appid=NOT_FABRIC_APP_ID)),
        "appToken: app id is not a Fabric app",
        id="app-not-fabric",
    ),
    pytest.param(
        lambda: header_with(app=mint_app_token(version=2, azp=NOT_FABRIC_APP_ID, appid=FABRIC_APP_ID)),
        "appToken: app id is not a Fabric app",
        id="v2-app-id-is-azp",
    ),
    pytest.param(
        lambda: header_with(app=mint_app_token(remove=["appid"])), "appToken: token has no appid claim", id="no-appid"
    ),
    pytest.param(
        lambda: header_with(app=mint_app_token(scp="FabricWorkloadControl")),
        "appToken: token is not app-only",
        id="app-with-scp",
    ),
    pytest.param(
        lambda: header_with(app=mint_app_token(remove=["idtyp"])),
        "appToken: token is not app-only",
        id="app-without-idtyp",
    ),
    pytest.param(
        lambda: authorization_header(valid_app(), valid_subject()),
        "appToken: token is not app-only",
        id="tokens-swapped",
    ),
    pytest.param(
        lambda: header_with(app=mint_app_token(tid=OTHER_TENANT_ID)),
        "appToken: tenant is not the publisher tenant",
        id="app-from-other-tenant",
    ),
    pytest.param(
        lambda: header_with(subject=mint_subject_token(scp="Item.Read Item.Write")),
        "subjectToken: scopes do not include FabricWorkloadControl",
        id="no-fabric-scope",
    ),
    pytest.param(
        lambda: header_with(subject=mint_subject_token(scp="FabricWorkloadControlX")),
        "subjectToken: scopes do not include FabricWorkloadControl",
        id="scope-prefix-only",
    ),
    pytest.param(
        lambda: header_with(subject=mint_subject_token(remove=["scp"])),
        "subjectToken: token is not delegated",
        id="subject-without-scp",
    ),
    pytest.param(
        lambda: header_with(subject=mint_subject_token(tid=OTHER_TENANT_ID)),
        "subjectToken: tenant does not match x-ms-client-tenant-id",
        id="subject-other-tenant",
    ),
    pytest.param(
        lambda: header_with(subject=mint_subject_token(appid=OTHER_FABRIC_APP_ID)),
        "subjectToken: app id does not match the appToken's",
        id="different-apps",
    ),
    pytest.param(
        lambda: header_with(subject=mint_subject_token(remove=["oid", "sub"])),
        "subjectToken: token has no oid or sub claim",
        id="no-object-id",
    ),
]


@pytest.mark.parametrize(("make_header", "message"), FAILURES)
async def test_rejected_with_a_message_that_names_the_failure(
    authenticator: Authenticator, make_header: Callable[[], str | None], message: str
) -> None:
    header = make_header()

    with pytest.raises(AuthError) as caught:
        await authenticator.authenticate(header, CLIENT_TENANT_ID)

    assert message in caught.value.message
    assert "eyJ" not in str(caught.value)


@pytest.mark.parametrize(
    ("client_tenant", "message"),
    [
        pytest.param(None, "x-ms-client-tenant-id header is missing", id="missing"),
        pytest.param("", "x-ms-client-tenant-id header is missing", id="empty"),
        pytest.param("contoso", "x-ms-client-tenant-id header is not a GUID", id="not-a-guid"),
        pytest.param(PUBLISHER_TENANT_ID, "subjectToken: tenant does not match x-ms-client-tenant-id", id="other"),
    ],
)
async def test_client_tenant_header_is_required_and_must_match(
    authenticator: Authenticator, client_tenant: str | None, message: str
) -> None:
    with pytest.raises(AuthError, match=message):
        await authenticator.authenticate(pair(), client_tenant)


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 that counts its requests."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = tokens.jwks_document(tokens.SIGNING_KEY)
        self.status = 200
        self.requests = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                body = json.dumps(server.document).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/discovery/v2.0/keys"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    try:
        yield server
    finally:
        server.close()


def url_authenticator(url: str, interval: float = 300, clock: Clock | None = None) -> Authenticator:
    settings = tokens.auth_settings_for(jwks_url=url, jwks_refresh_min_interval_seconds=interval)
    return Authenticator(settings, clock or Clock())


async def test_keys_are_fetched_once_and_cached(jwks_server: JwksServer) -> None:
    authenticator = url_authenticator(jwks_server.url)

    await authenticator.authenticate(pair(), CLIENT_TENANT_ID)
    await authenticator.authenticate(pair(version=2), CLIENT_TENANT_ID)

    assert jwks_server.requests == 1


async def test_unknown_kid_refetches_once_the_interval_has_passed(jwks_server: JwksServer, clock: Clock) -> None:
    authenticator = url_authenticator(jwks_server.url, interval=300, clock=clock)
    await authenticator.authenticate(pair(), CLIENT_TENANT_ID)
    jwks_server.document = tokens.jwks_document(tokens.SIGNING_KEY, OTHER_KEY)
    signed_by_the_new_key = pair(app={"key": OTHER_KEY}, subject={"key": OTHER_KEY})

    clock.advance(299)
    with pytest.raises(AuthError, match="appToken: signing key is not known"):
        await authenticator.authenticate(signed_by_the_new_key, CLIENT_TENANT_ID)
    assert jwks_server.requests == 1

    clock.advance(1)
    await authenticator.authenticate(signed_by_the_new_key, CLIENT_TENANT_ID)
    assert jwks_server.requests == 2


async def test_a_clock_set_back_does_not_hold_off_the_refetch(jwks_server: JwksServer, clock: Clock) -> None:
    authenticator = url_authenticator(jwks_server.url, interval=300, clock=clock)
    await authenticator.authenticate(pair(), CLIENT_TENANT_ID)
    jwks_server.document = tokens.jwks_document(tokens.SIGNING_KEY, OTHER_KEY)

    clock.advance(-60)
    await authenticator.authenticate(pair(app={"key": OTHER_KEY}, subject={"key": OTHER_KEY}), CLIENT_TENANT_ID)

    assert jwks_server.requests == 2


async def test_unknown_kids_within_the_interval_do_not_refetch(jwks_server: JwksServer) -> None:
    authenticator = url_authenticator(jwks_server.url)
    await authenticator.authenticate(pair(), CLIENT_TENANT_ID)
    jwks_server.document = tokens.jwks_document(tokens.SIGNING_KEY, OTHER_KEY)

    for kid in ("forged-1", "forged-2", OTHER_KEY.kid):
        with pytest.raises(AuthError, match="appToken: signing key is not known"):
            await authenticator.authenticate(pair(app={"headers": {"kid": kid}}), CLIENT_TENANT_ID)

    assert jwks_server.requests == 1


async def test_an_unknown_kid_on_a_cold_cache_fetches_exactly_once(jwks_server: JwksServer) -> None:
    authenticator = url_authenticator(jwks_server.url)

    for kid in ("forged-1", "forged-2"):
        with pytest.raises(AuthError, match="appToken: signing key is not known"):
            await authenticator.authenticate(pair(app={"headers": {"kid": kid}}), CLIENT_TENANT_ID)

    assert jwks_server.requests == 1


@pytest.mark.parametrize(
    ("status", "document"),
    [
        pytest.param(500, {"error": "unavailable"}, id="http-500"),
        pytest.param(200, {"keys": []}, id="no-keys"),
        pytest.param(200, ["not", "a", "jwks"], id="not-a-jwks"),
    ],
)
async def test_a_failed_fetch_is_an_auth_error(jwks_server: JwksServer, status: int, document: Any) -> None:
    jwks_server.status = status
    jwks_server.document = document
    authenticator = url_authenticator(jwks_server.url, interval=0)

    with pytest.raises(AuthError, match="appToken: signing keys could not be fetched"):
        await authenticator.authenticate(pair(), CLIENT_TENANT_ID)

    jwks_server.status = 200
    jwks_server.document = tokens.jwks_document()
    await authenticator.authenticate(pair(), CLIENT_TENANT_ID)
    assert jwks_server.requests == 2


async def test_a_failed_fetch_is_retried_after_seconds_not_the_full_interval(
    jwks_server: JwksServer, clock: Clock
) -> None:
    jwks_server.status = 503
    authenticator = url_authenticator(jwks_server.url, interval=300, clock=clock)
    with pytest.raises(AuthError, match="signing keys could not be fetched"):
        await authenticator.authenticate(pair(), CLIENT_TENANT_ID)
    jwks_server.status = 200

    clock.advance(RETRY_AFTER_FAILED_FETCH_SECONDS - 1)
    with pytest.raises(AuthError, match="signing keys could not be fetched"):
        await authenticator.authenticate(pair(), CLIENT_TENANT_ID)
    assert jwks_server.requests == 1

    clock.advance(1)
    await authenticator.authenticate(pair(), CLIENT_TENANT_ID)
    assert jwks_server.requests == 2


async def test_an_unreachable_jwks_url_is_an_auth_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    authenticator = url_authenticator(f"http://127.0.0.1:{port}/keys")

    with pytest.raises(AuthError, match="appToken: signing keys could not be fetched"):
        await authenticator.authenticate(pair(), CLIENT_TENANT_ID)


async def test_a_jwks_file_is_read_once(tmp_path: pathlib.Path) -> None:
    jwks_file = tokens.write_jwks(tmp_path)
    authenticator = Authenticator(tokens.auth_settings_for(jwks_file))
    jwks_file.unlink()

    await authenticator.authenticate(pair(), CLIENT_TENANT_ID)
    with pytest.raises(AuthError, match="appToken: signing key is not known"):
        await authenticator.authenticate(pair(app={"key": OTHER_KEY}), CLIENT_TENANT_ID)
