"""The `fabric-jobs` command: serve (REST bridge and JobService in one process), grpc, rest, worker, migrate,
manifest (Fabric's item manifest of a registry), jobs (list, show, cancel and watch jobs of a running service).

Every option can also be set by an environment variable FABRIC_JOBS_<NAME> (for example
FABRIC_JOBS_CANCEL_WAIT); the command line wins. Options are parsed and checked here, once, into the
settings and collaborators each component is given. Bad configuration is one line on stderr and
exit status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from fabric_jobs.cli.config import config_from_args, registry_from_args
from fabric_jobs.cli.jobs import run_jobs_command
from fabric_jobs.cli.manifest import print_manifest
from fabric_jobs.cli.option_kit import ConfigError
from fabric_jobs.cli.options import build_parser
from fabric_jobs.cli.run import leave_blocked_handler_threads, run, run_loop
from fabric_jobs.observability import logs, tracing

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "jobs":
        return run_jobs_command(args)
    if args.command == "dev-tokens":
        from fabric_jobs.cli.dev_tokens import make_dev_tokens

        return make_dev_tokens(args)
    if args.command == "manifest":
        try:
            return print_manifest(registry_from_args(args))
        except ConfigError as exc:
            print(f"fabric-jobs manifest: error: {exc}", file=sys.stderr)
            return 2
    logs.configure(args.log_level, args.log_format)
    try:
        tracing.configure_from_environment()
        run_loop(run(config_from_args(args)))
        leave_blocked_handler_threads()
    except (ConfigError, tracing.TracingConfigError) as exc:
        print(f"fabric-jobs {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        tracing.shutdown()
    return 0
