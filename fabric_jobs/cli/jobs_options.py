"""The options of `fabric-jobs jobs list|show|cancel|watch|purge`."""

from __future__ import annotations

import argparse
import datetime
from collections.abc import Callable
from typing import Any

from fabric_jobs.admin_json import STATUS_BY_NAME
from fabric_jobs.cli.grpc_tls import add_grpc_client_tls_options
from fabric_jobs.cli.option_kit import (
    DEFAULT_GRPC_TARGET,
    DURATION,
    SECONDS_PER_UNIT,
    Parser,
    duration_seconds,
    grpc_target,
    option,
    positive_float,
    positive_int,
    switch,
)
from fabric_jobs.keys import FILTER_PARTS, UUID, Rule
from fabric_jobs.rest_bridge.mapping import STATUS_NAMES
from fabric_jobs.status import JobStatus

STATUS_CHOICES = ", ".join(STATUS_NAMES.values())


def _key_part(rule: Rule) -> Callable[[str], str]:
    def converter(value: str) -> str:
        if not rule.holds(value.strip()):
            raise argparse.ArgumentTypeError(f"{rule.text}, not {value!r}")
        return rule.canonical(value.strip())

    return converter


def _statuses(value: str) -> list[JobStatus]:
    statuses = []
    for part in (part.strip() for part in value.split(",")):
        if part.lower() not in STATUS_BY_NAME:
            raise argparse.ArgumentTypeError(f"must be statuses among {STATUS_CHOICES}, comma-separated, not {part!r}")
        statuses.append(STATUS_BY_NAME[part.lower()])
    return statuses


def _since(value: str) -> datetime.datetime:
    """A UTC time: ISO 8601 (2026-11-29, 2026-11-29T06:00:00Z) or a time ago (90s, 30m, 2h, 7d)."""
    text = value.strip()
    if match := DURATION.fullmatch(text):
        ago = datetime.timedelta(seconds=float(match[1]) * SECONDS_PER_UNIT[match[2]])
        return datetime.datetime.now(datetime.UTC) - ago
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a UTC time such as 2026-11-29T06:00:00Z or a time ago such as 30m, 2h, 7d; not {value!r}"
        ) from None
    return moment.replace(tzinfo=datetime.UTC) if moment.tzinfo is None else moment


def _add_target(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    option(
        group,
        "--grpc-target",
        "the service to talk to (its gRPC port): host:port, unix:path or dns:///name:port (default: %(default)s)",
        DEFAULT_GRPC_TARGET,
        grpc_target,
    )
    option(
        group,
        "--timeout",
        "seconds each call may take (default: %(default)s)",
        "10",
        positive_float,
    )
    add_grpc_client_tls_options(parser.add_argument_group("TLS of the gRPC connection"))
    switch(parser, "--json", "print one JSON document instead of text (watch: one JSON object per change)")


def _add_key_parts(group: Any, *, what: str) -> None:
    for part in FILTER_PARTS:
        a_uuid = " (a UUID)" if part.rule.is_uuid else ""
        option(group, part.option, f"{what} of this {part.noun}{a_uuid}", converter=_key_part(part.rule))


def add_jobs_command(commands: Any) -> None:
    jobs = commands.add_parser(
        "jobs",
        help="find, inspect, cancel and watch job instances of a running service (all tenants)",
        description="Operate the jobs of a running fabric-jobs service over its gRPC port (JobService and "
        "AdminService): across tenants unless --tenant is given. Text for people, --json for scripts.",
    )
    actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=Parser)
    listing = actions.add_parser(
        "list", help="list job instances, newest first", description="List job instances, newest first."
    )
    filters = listing.add_argument_group("filters")
    _add_key_parts(filters, what="only jobs")
    option(filters, "--status", f"only jobs in these statuses, comma-separated ({STATUS_CHOICES})", None, _statuses)
    option(
        filters,
        "--since",
        "only jobs created at or after this UTC time (2026-11-29T06:00:00Z) or this long ago (30m, 2h, 7d)",
        None,
        _since,
    )
    option(listing, "--limit", "at most this many jobs, read page by page (default: %(default)s)", "50", positive_int)
    _add_target(listing)
    purging = actions.add_parser(
        "purge",
        help="delete ended jobs older than a time, with their history (what --retention does in the background)",
        description="Delete the ended job instances (Completed, Failed, Cancelled) the filters cover that ended "
        "longer ago than --older-than, with their history and everything stored for them, in short batches. "
        "Jobs that have not ended are never deleted. Prints how many.",
    )
    option(
        purging,
        "--older-than",
        "required: only jobs that ended at least this long ago: 7d, 12h, 90m, 30s; 0 means every ended job",
        None,
        duration_seconds,
    )
    purging.add_argument("--dry-run", action="store_true", help="count the jobs that would be deleted; delete nothing")
    purge_filters = purging.add_argument_group("filters")
    _add_key_parts(purge_filters, what="only jobs")
    option(
        purge_filters,
        "--status",
        "only jobs in these statuses, comma-separated (Completed, Failed, Cancelled)",
        None,
        _statuses,
    )
    _add_target(purging)
    for action, help_text in (
        ("show", "show a job instance: its state, error details and history"),
        ("cancel", "cancel a job instance and print its state after the cancel"),
        ("watch", "print each change of a job instance until it ends (Ctrl-C stops watching, not the job)"),
    ):
        description = (
            f"{help_text[0].upper()}{help_text[1:]}. The job is named by its job instance id alone when that is "
            "unique, else with the other parts of its key."
        )
        if action == "cancel":
            description += (
                " With --all instead of a job instance id: cancel every job of an item (--item) or a workspace "
                "(--workspace) that has not ended, each as a single cancel would, and print how many were asked "
                "and how many ended within the service's cancel wait (what to do when an item is deleted)."
            )
        sub = actions.add_parser(action, help=help_text, description=description)
        sub.add_argument(
            "job_instance_id",
            metavar="JOB_INSTANCE_ID",
            type=_key_part(UUID),
            nargs="?" if action == "cancel" else None,
            help="the job instance id (a UUID)" + ("; leave out with --all" if action == "cancel" else ""),
        )
        _add_key_parts(sub.add_argument_group("the rest of the key, when the id alone is not unique"), what="the job")
        if action == "cancel":
            every = sub.add_argument_group("every job of an item or a workspace")
            every.add_argument(
                "--all",
                action="store_true",
                help="cancel every job not ended that --workspace or --item (required) and the other key options cover",
            )
            every.add_argument(
                "--dry-run", action="store_true", help="with --all: count the jobs that would be cancelled; cancel none"
            )
        _add_target(sub)
