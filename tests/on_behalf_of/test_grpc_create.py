"""Internal services that call Create over gRPC on a user's behalf: the assertion in the request body, the caller
given or read from it; bad ones refused without echoing them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import grpc

from fabric_jobs.on_behalf_of.sealing import Sealer
from fabric_jobs.on_behalf_of.tokens import EntraUserTokens
from fabric_jobs.v1 import job_service_pb2 as pb
from tests import tokens
from tests.conftest import ServerFactory, new_key, rpc_error, status_details, wait_for_status
from tests.entra import JWT_BEARER, EntraStandIn
from tests.on_behalf_of.acting_jobs import ITEM_TYPE, STORAGE, registry
from tests.on_behalf_of.conftest import entra_app
from tests.tls import Certificates

TWO_SCOPES = f"{ITEM_TYPE}.TwoScopes"


def user_tokens(entra: EntraStandIn, certificates: Certificates) -> EntraUserTokens:
    return EntraUserTokens(entra_app(entra, certificates), Sealer(bytes(range(32))))


def create_request(
    key: pb.JobInstanceKey, report: Path, *, user_assertion: str = "", caller: pb.Caller | None = None
) -> pb.CreateJobInstanceRequest:
    payload = json.dumps({"report": str(report)})
    return pb.CreateJobInstanceRequest(
        key=key,
        invoke_type=pb.JOB_INVOKE_TYPE_MANUAL,
        creation_payload_json=payload,
        user_assertion=user_assertion,
        caller=caller,
    )


async def test_an_assertion_without_a_caller_gives_the_handler_tokens_and_the_caller_of_its_claims(
    start_server: ServerFactory, entra: EntraStandIn, certificates: Certificates, tmp_path: Path
) -> None:
    running = await start_server(registry, user_tokens=user_tokens(entra, certificates))
    assertion = tokens.mint_subject_token(uti=uuid.uuid4().hex, upn="adele@contoso.example")
    key = new_key(ITEM_TYPE, TWO_SCOPES, tenant_id=tokens.CLIENT_TENANT_ID)

    reply = await running.stub.CreateJobInstance(create_request(key, tmp_path / "r.json", user_assertion=assertion))

    assert reply.job_instance.caller == pb.Caller(
        tenant_id=tokens.CLIENT_TENANT_ID,
        object_id=tokens.USER_OBJECT_ID,
        user_principal_name="adele@contoso.example",
        app_id=tokens.FABRIC_APP_ID,
    )
    await wait_for_status(running.stub, key, pb.JOB_INSTANCE_STATUS_COMPLETED)
    assert json.loads((tmp_path / "r.json").read_text())["caller"]["user_principal_name"] == "adele@contoso.example"
    (exchange,) = entra.token_requests(JWT_BEARER)
    assert exchange["assertion"] == assertion
    assert STORAGE in exchange["scope"].split()


async def test_a_bad_assertion_or_caller_is_invalid_argument_that_never_echoes_it(
    start_server: ServerFactory, entra: EntraStandIn, certificates: Certificates, tmp_path: Path
) -> None:
    running = await start_server(registry, user_tokens=user_tokens(entra, certificates))
    secret_looking = "not-a-jwt-" + uuid.uuid4().hex
    bad_caller = pb.Caller(tenant_id=tokens.CLIENT_TENANT_ID, object_id="someone", app_id=tokens.FABRIC_APP_ID)

    for assertion, caller, field in (
        (secret_looking, None, "user_assertion"),
        ("", bad_caller, "caller.object_id"),
        ("x" * 20_000, None, "user_assertion"),
    ):
        request = create_request(
            new_key(ITEM_TYPE, TWO_SCOPES), tmp_path / "r.json", user_assertion=assertion, caller=caller
        )
        err = await rpc_error(running.stub.CreateJobInstance(request))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in status_details(err).field_violations
        assert secret_looking not in str(err.details()) + str(status_details(err))
    assert entra.token_requests() == []
