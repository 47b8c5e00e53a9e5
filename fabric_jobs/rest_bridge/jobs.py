"""The three Jobs endpoints: authenticate, validate, make exactly one JobService call, map its answer."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fabric_jobs import request_context
from fabric_jobs.errors import ErrorCode
from fabric_jobs.identity import DEV_CALLER, caller_to_pb
from fabric_jobs.observability import tracing
from fabric_jobs.rest_bridge import mapping, validation
from fabric_jobs.rest_bridge.auth import Authenticated, Authenticator, AuthError
from fabric_jobs.rest_bridge.body import read_body
from fabric_jobs.rest_bridge.errors import http_error
from fabric_jobs.rest_bridge.grpc_errors import from_rpc_error
from fabric_jobs.rest_bridge.settings import BridgeSettings
from fabric_jobs.rest_bridge.tolerance import UnknownInCreate
from fabric_jobs.rest_bridge.types import JobServiceStubLike, Metadata
from fabric_jobs.v1 import job_service_pb2 as pb

logger = logging.getLogger(__name__)

INSTANCE_PATH = "/workspaces/{workspaceId}/items/{itemType}/{itemId}/jobTypes/{jobType}/instances/{jobInstanceId}"

_Reply = TypeVar("_Reply")


class JobsEndpoints:
    def __init__(self, settings: BridgeSettings, stub: JobServiceStubLike, authenticator: Authenticator | None) -> None:
        self._settings = settings
        self._stub = stub
        self._authenticator = authenticator
        self._unknown = UnknownInCreate()

    def routes(self, base_path: str) -> list[Route]:
        instance = base_path + INSTANCE_PATH
        return [  # Get first: Fabric polls it while a job runs, and routes are matched in order
            Route(instance, self.get, methods=["GET"], name="Jobs_GetItemJobInstanceState"),
            Route(instance, self.create, methods=["POST"], name="Jobs_CreateItemJobInstance"),
            Route(instance + "/cancel", self.cancel, methods=["POST"], name="Jobs_CancelItemJobInstance"),
        ]

    async def create(self, request: Request) -> Response:
        authenticated = await self._authenticate(request)
        key = self._job_key(request)
        validation.require_json_content_type(request.headers.get("content-type"))
        body = validation.parse_create_body(await read_body(request, self._settings.max_body_bytes))
        self._unknown.note(body)
        message = mapping.create_request(key, body)
        if authenticated is None:
            message.caller.CopyFrom(caller_to_pb(DEV_CALLER))
        else:
            message.caller.CopyFrom(caller_to_pb(authenticated.caller))
            message.user_assertion = authenticated.subject_token
        reply = await self._call(self._stub.CreateJobInstance, message)
        logger.info("job instance %s (created: %s)", key.job_instance_id, reply.created)
        return Response(status_code=202)

    async def get(self, request: Request) -> Response:
        key = await self._key(request)
        reply = await self._call(self._stub.GetJobInstance, pb.GetJobInstanceRequest(key=key))
        return JSONResponse(mapping.job_state(reply.job_instance))

    async def cancel(self, request: Request) -> Response:
        key = await self._key(request)
        reply = await self._call(self._stub.CancelJobInstance, pb.CancelJobInstanceRequest(key=key))
        return JSONResponse(mapping.job_state(reply.job_instance))

    async def _key(self, request: Request) -> pb.JobInstanceKey:
        await self._authenticate(request)
        return self._job_key(request)

    async def _authenticate(self, request: Request) -> Authenticated | None:
        """The validated caller and token; None in dev mode (no authentication)."""
        if self._authenticator is None:
            return None
        try:
            return await self._authenticator.authenticate(
                request.headers.get(validation.AUTHORIZATION_HEADER),
                request.headers.get(validation.TENANT_HEADER),
            )
        except AuthError as exc:
            logger.info("authentication failed: %s", exc.message)
            raise http_error(ErrorCode.AUTH_ERROR, exc.message) from None

    @staticmethod
    def _job_key(request: Request) -> pb.JobInstanceKey:
        return validation.job_key(request.path_params, request.headers)

    async def _call(
        self,
        method: Callable[..., Awaitable[_Reply]],
        message: object,
    ) -> _Reply:
        metadata: Metadata = request_context.metadata()
        if tracing.enabled():
            metadata = tracing.inject_metadata(metadata)
        try:
            return await method(message, timeout=self._settings.request_timeout_seconds, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
