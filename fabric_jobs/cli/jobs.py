"""`fabric-jobs jobs list|show|cancel|watch|purge`: a client of a running service's JobService and AdminService.

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
from collections.abc import AsyncIterator
from typing import Any

import grpc

from fabric_jobs.admin_json import format_datetime, job_json, transition_json
from fabric_jobs.cli.grpc_tls import grpc_client_tls
from fabric_jobs.cli.jobs_output import card, change_line, table
from fabric_jobs.cli.option_kit import ConfigError
from fabric_jobs.client import (
    AdminClient,
    JobFilter,
    JobKey,
    JobsClient,
    JobsError,
    JobState,
    JobStatus,
    RetryBudget,
    ServiceError,
    TransportError,
    open_channel,
)
from fabric_jobs.keys import FILTER_PARTS

MAX_PAGE_SIZE = 1000


class JobsCommandError(Exception):
    """A call failed: the message is the one line the user sees."""


class _Client:
    def __init__(self, channel: grpc.aio.Channel, args: argparse.Namespace) -> None:
        timeout: float = args.timeout
        budget = RetryBudget()
        self.jobs = JobsClient(channel, timeout=timeout, budget=budget)
        self.admin = AdminClient(channel, timeout=timeout, budget=budget)
        self.args = args


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
    channel = open_channel(args.grpc_target, tls=grpc_client_tls(args))
    try:
        client = _Client(channel, args)
        action = {"list": _list, "show": _show, "cancel": _cancel, "watch": _watch, "purge": _purge}[args.action]
        return await action(client)
    except JobsError as exc:
        raise JobsCommandError(_failure(exc, args)) from None
    finally:
        await channel.close(grace=None)


def _failure(exc: JobsError, args: argparse.Namespace) -> str:
    if isinstance(exc, ServiceError):
        return f"{exc.status.name}: {exc.details.message}"
    assert isinstance(exc, TransportError)
    if exc.status == grpc.StatusCode.UNAVAILABLE:
        return f"cannot reach a fabric-jobs service at {args.grpc_target} ({exc.message})"
    if exc.status == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no answer from {args.grpc_target} within {args.timeout:g} s"
    if exc.status == grpc.StatusCode.UNIMPLEMENTED:
        return f"{args.grpc_target} is not a fabric-jobs service with an AdminService ({exc.message})"
    return str(exc)


def _print_json(document: Any) -> None:
    print(json.dumps(document, indent=2))


def _filter(args: argparse.Namespace, job_instance_id: str = "") -> JobFilter:
    return JobFilter(
        **{part.field: getattr(args, part.dest) or "" for part in FILTER_PARTS},
        job_instance_id=job_instance_id,
        statuses=frozenset(getattr(args, "status", None) or ()),
        created_since=getattr(args, "since", None),
    )


async def _list(client: _Client) -> int:
    limit: int = client.args.limit
    found: list[JobState] = []
    token: str | None = None
    while len(found) < limit:
        page = await client.admin.search(
            _filter(client.args), page_size=min(limit - len(found), MAX_PAGE_SIZE), page_token=token
        )
        found.extend(page.jobs)
        token = page.next_page_token
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


async def _find(client: _Client) -> JobKey:
    """The key of the one job the arguments name; JobsCommandError when none or several match."""
    args = client.args
    page = await client.admin.search(_filter(args, args.job_instance_id), page_size=2)
    if not page.jobs:
        parts = any(getattr(args, part.dest) for part in FILTER_PARTS)
        raise JobsCommandError(f"no job instance {args.job_instance_id}" + (" with that key" if parts else ""))
    if len(page.jobs) > 1:
        raise JobsCommandError(
            f"job instance id {args.job_instance_id} is not unique: give "
            + ", ".join(part.option for part in FILTER_PARTS[:-1])
            + f" or {FILTER_PARTS[-1].option}"
        )
    return page.jobs[0].key


async def _show(client: _Client) -> int:
    history = await client.admin.history(await _find(client))
    if client.args.json:
        _print_json(
            {
                "jobInstance": job_json(history.job),
                "transitions": [transition_json(step) for step in history.transitions],
            }
        )
    else:
        print(card(history.job, history.transitions))
    return 0


async def _cancel(client: _Client) -> int:
    args = client.args
    if args.all:
        return await _cancel_all(client)
    if args.dry_run:
        raise ConfigError("--dry-run goes with --all")
    if args.job_instance_id is None:
        raise ConfigError("give a JOB_INSTANCE_ID, or --all with --item or --workspace")
    job = await client.jobs.cancel(await _find(client))
    if client.args.json:
        _print_json({"jobInstance": job_json(job)})
    else:
        print(card(job))
    return 0


async def _cancel_all(client: _Client) -> int:
    """Every job of an item or a workspace not ended: counted (--dry-run) or cancelled."""
    args = client.args
    if args.job_instance_id is not None:
        raise ConfigError("--all cancels every job of an item or a workspace: give no JOB_INSTANCE_ID")
    if not (args.workspace or args.item):
        raise ConfigError("--all needs --item or --workspace (a cancel of every job of the service is refused)")
    job_filter = _filter(args)
    if args.dry_run:
        counts = (await client.admin.count(job_filter)).by_status
        not_ended = counts[JobStatus.NOT_STARTED] + counts[JobStatus.IN_PROGRESS]
        if args.json:
            _print_json({"notEnded": not_ended, "dryRun": True})
        else:
            print(f"would cancel up to {not_ended} job instance(s) not ended (dry run: nothing cancelled)")
        return 0
    done = await client.admin.cancel_all(job_filter)
    if args.json:
        _print_json({"asked": done.asked, "ended": done.ended})
    else:
        stopping = done.asked - done.ended
        line = f"asked {done.asked} job instance(s) to cancel; {done.ended} ended"
        if stopping:
            line += f", {stopping} still stopping (their handlers were told; stopped by force after the cancel grace)"
        print(line)
    return 0


async def _purge(client: _Client) -> int:
    args = client.args
    if args.older_than is None:
        raise ConfigError("--older-than is required (7d, 12h, 90m, 30s; 0 means every ended job)")
    if not all(status.is_terminal for status in args.status or ()):
        raise ConfigError("--status: only ended jobs are purged: Completed, Failed, Cancelled")
    older_than = datetime.timedelta(seconds=args.older_than)
    purged = await client.admin.purge(older_than, _filter(args), dry_run=args.dry_run)
    if args.json:
        _print_json({"purged": purged, "dryRun": args.dry_run})
    elif args.dry_run:
        print(f"would delete {purged} ended job instance(s) (dry run: nothing deleted)")
    else:
        print(f"deleted {purged} ended job instance(s)")
    return 0


async def _watch(client: _Client) -> int:
    stream = client.jobs.watch(await _find(client))
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, interrupted.set)
    try:
        reading = asyncio.ensure_future(_print_changes(stream, client.args.json))
        stopping = asyncio.ensure_future(interrupted.wait())
        await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if interrupted.is_set():
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, JobsError):
                await reading
            await stream.aclose()
            print("stopped watching; the job was not cancelled", file=sys.stderr)
            return 130
        await reading
        return 0
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def _print_changes(stream: AsyncIterator[JobState], as_json: bool) -> None:
    async for job in stream:
        seen_at = format_datetime(datetime.datetime.now(datetime.UTC))
        if as_json:
            print(json.dumps({"seenUtc": seen_at, "jobInstance": job_json(job)}), flush=True)
        else:
            print(change_line(job, seen_at), flush=True)
