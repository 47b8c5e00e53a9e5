"""`fabric-jobs jobs list|show|cancel|watch`: a client of a running service's JobService and AdminService.

Every failure is one line on stderr and a non-zero exit: 2 for bad options (argparse), 1 for a call that failed
(unreachable service, unknown job), 130 when Ctrl-C stops a watch (the job goes on).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import signal
import sys
from typing import Any

import grpc
from google.protobuf import timestamp_pb2

from fabric_jobs.cli.grpc_client import client_channel
from fabric_jobs.cli.grpc_tls import grpc_client_tls
from fabric_jobs.cli.jobs_output import card, change_line, table
from fabric_jobs.cli.options import ConfigError
from fabric_jobs.keys import FILTER_PARTS
from fabric_jobs.rest_bridge.admin_json import job_json, transition_json
from fabric_jobs.rest_bridge.mapping import format_time
from fabric_jobs.v1 import admin_service_pb2 as admin_pb
from fabric_jobs.v1 import admin_service_pb2_grpc as admin_grpc
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc

MAX_PAGE_SIZE = 1000


class JobsCommandError(Exception):
    """A call failed: the message is the one line the user sees."""


class _Client:
    def __init__(self, channel: grpc.aio.Channel, args: argparse.Namespace) -> None:
        self.jobs = pb_grpc.JobServiceStub(channel)
        self.admin = admin_grpc.AdminServiceStub(channel)
        self.args = args
        self.timeout: float = args.timeout


def run_jobs_command(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except JobsCommandError as exc:
        print(f"fabric-jobs jobs {args.action}: {exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"fabric-jobs jobs {args.action}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _run(args: argparse.Namespace) -> int:
    channel = client_channel(args.grpc_target, grpc_client_tls(args))
    try:
        client = _Client(channel, args)
        action = {"list": _list, "show": _show, "cancel": _cancel, "watch": _watch}[args.action]
        return await action(client)
    except grpc.aio.AioRpcError as exc:
        raise JobsCommandError(_failure(exc, args)) from None
    finally:
        await channel.close(grace=None)


def _failure(exc: grpc.aio.AioRpcError, args: argparse.Namespace) -> str:
    code = exc.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        return f"cannot reach a fabric-jobs service at {args.grpc_target} ({exc.details()})"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no answer from {args.grpc_target} within {args.timeout:g} s"
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return f"{args.grpc_target} is not a fabric-jobs service with an AdminService ({exc.details()})"
    return f"{code.name}: {exc.details()}"


def _print_json(document: Any) -> None:
    print(json.dumps(document, indent=2))


def _filter(args: argparse.Namespace, job_instance_id: str = "") -> admin_pb.JobInstanceFilter:
    job_filter = admin_pb.JobInstanceFilter(
        job_instance_id=job_instance_id, statuses=getattr(args, "status", None) or []
    )
    for part in FILTER_PARTS:
        setattr(job_filter, part.field, getattr(args, part.dest) or "")
    since = getattr(args, "since", None)
    if since is not None:
        job_filter.created_since.FromDatetime(since.astimezone(datetime.UTC).replace(tzinfo=None))
    return job_filter


async def _list(client: _Client) -> int:
    limit: int = client.args.limit
    found: list[pb.JobInstance] = []
    token = ""
    while len(found) < limit:
        request = admin_pb.SearchJobInstancesRequest(
            filter=_filter(client.args), page_size=min(limit - len(found), MAX_PAGE_SIZE), page_token=token
        )
        reply = await client.admin.SearchJobInstances(request, timeout=client.timeout)
        found.extend(reply.job_instances)
        token = reply.next_page_token
        if not token:
            break
    if client.args.json:
        document: dict[str, Any] = {"jobInstances": [job_json(job) for job in found]}
        if token:
            document["more"] = True
        _print_json(document)
    elif found:
        print(table(found))
        if token:
            print(f"(the first {len(found)}; --limit shows more)")
    else:
        print("no job instances")
    return 0


async def _find(client: _Client) -> pb.JobInstanceKey:
    """The key of the one job the arguments name; JobsCommandError when none or several match."""
    args = client.args
    request = admin_pb.SearchJobInstancesRequest(filter=_filter(args, args.job_instance_id), page_size=2)
    reply = await client.admin.SearchJobInstances(request, timeout=client.timeout)
    if not reply.job_instances:
        parts = any(getattr(args, part.dest) for part in FILTER_PARTS)
        raise JobsCommandError(f"no job instance {args.job_instance_id}" + (" with that key" if parts else ""))
    if len(reply.job_instances) > 1:
        raise JobsCommandError(
            f"job instance id {args.job_instance_id} is not unique: give "
            + ", ".join(part.option for part in FILTER_PARTS[:-1])
            + f" or {FILTER_PARTS[-1].option}"
        )
    return reply.job_instances[0].key


async def _show(client: _Client) -> int:
    key = await _find(client)
    reply = await client.admin.ListJobInstanceTransitions(
        admin_pb.ListJobInstanceTransitionsRequest(key=key), timeout=client.timeout
    )
    if client.args.json:
        _print_json(
            {
                "jobInstance": job_json(reply.job_instance),
                "transitions": [transition_json(step) for step in reply.transitions],
            }
        )
    else:
        print(card(reply.job_instance, reply.transitions))
    return 0


async def _cancel(client: _Client) -> int:
    key = await _find(client)
    reply = await client.jobs.CancelJobInstance(pb.CancelJobInstanceRequest(key=key), timeout=client.timeout)
    if client.args.json:
        _print_json({"jobInstance": job_json(reply.job_instance)})
    else:
        print(card(reply.job_instance))
    return 0


async def _watch(client: _Client) -> int:
    key = await _find(client)
    stream = client.jobs.WatchJobInstance(pb.WatchJobInstanceRequest(key=key))
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, interrupted.set)
    try:
        reading = asyncio.ensure_future(_print_changes(stream, client.args.json))
        stopping = asyncio.ensure_future(interrupted.wait())
        await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if interrupted.is_set():
            stream.cancel()
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await reading
            print("stopped watching; the job was not cancelled", file=sys.stderr)
            return 130
        await reading
        return 0
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def _print_changes(stream: Any, as_json: bool) -> None:
    async for reply in stream:
        seen_at = format_time(_now())
        if as_json:
            print(json.dumps({"seenUtc": seen_at, "jobInstance": job_json(reply.job_instance)}), flush=True)
        else:
            print(change_line(reply.job_instance, seen_at), flush=True)


def _now() -> timestamp_pb2.Timestamp:
    now = timestamp_pb2.Timestamp()
    now.GetCurrentTime()
    return now
