"""Crash cycles on PostgreSQL: SIGKILL a `fabric-jobs worker` or a `fabric-jobs grpc` replica at random moments
under a mixed REST load, start it again, and check that no acknowledged job was lost or changed.

python -m benchmarks.crash_pg [--cycles 20] [--seed S] [--clients 4] [--postgres URL]     (exit 1 on any violation)

Two replicas, each behind its own `fabric-jobs rest --dev` bridge, and two workers run the demo jobs on a fresh
database (dropped at the end). Each cycle loads both bridges as `benchmarks.crash` does, kills one of the four
processes chosen at random, reads the jobs table as the kill left it, starts the process again (a killed replica
with a new bridge) and polls every job until it is terminal. Checked as on SQLite, with the orphans being the
jobs InProgress at the kill that the killed worker ran: they must end Failed, JobExecutorLost, isPermanent false;
a replica's death must change no job.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from benchmarks import postgres
from benchmarks.crash import LEASE_SECONDS, ROWS, CycleResult, Load, Stored, Totals, compare, load_until_killed, settle
from benchmarks.processes import ServerProcess, grpc_replica, rest_bridge, worker

LEASE = ("--lease-seconds", str(LEASE_SECONDS))


class Cluster:
    """The replicas with their bridges and the workers, each startable again under a new name."""

    def __init__(self, work: Path, url: str, stack: contextlib.AsyncExitStack) -> None:
        self.work = work
        self.url = url
        self.stack = stack
        self.starts = 0
        self.replicas: list[ServerProcess] = []
        self.bridges: list[ServerProcess] = []
        self.workers: list[ServerProcess] = []

    async def _start(self, process: ServerProcess) -> ServerProcess:
        self.stack.push_async_callback(process.stop)
        await process.start()
        return process

    def _name(self, kind: str) -> str:
        self.starts += 1
        return f"{kind}-{self.starts}"

    async def start_replica(self, index: int) -> None:
        replica = grpc_replica(self.work, self.url, self._name("grpc"), *LEASE, "--cancel-wait", "0.2")
        replica = await self._start(replica)
        bridge = await self._start(rest_bridge(self.work, replica.addresses["grpc"], self._name("rest")))
        if index < len(self.replicas):
            await self.bridges[index].stop()
            self.replicas[index], self.bridges[index] = replica, bridge
        else:
            self.replicas.append(replica)
            self.bridges.append(bridge)

    async def start_worker(self, index: int) -> None:
        started = await self._start(worker(self.work, self.url, self._name("worker"), *LEASE, "--cancel-grace", "1"))
        if index < len(self.workers):
            self.workers[index] = started
        else:
            self.workers.append(started)

    def urls(self) -> list[str]:
        return ["http://" + bridge.addresses["rest"] for bridge in self.bridges]


async def snapshot(url: str) -> dict[str, Stored]:
    rows = await postgres.query_all(url, ROWS, {})
    return {row[0]: Stored(*row[1:]) for row in rows}


VICTIMS = (("worker", 0), ("worker", 1), ("replica", 0), ("replica", 1))


async def cycle(
    cluster: Cluster, rng: random.Random, clients: int, number: int, out: TextIO, victim_of: tuple[str, int] | None
) -> CycleResult:
    kind, index = victim_of or rng.choice(VICTIMS)
    victim = cluster.workers[index] if kind == "worker" else cluster.replicas[index]
    lost_owner = f"worker-{socket.gethostname()}-{victim.pid}" if kind == "worker" else ""
    loads = [Load(url, rng) for url in cluster.urls()]
    await load_until_killed(loads, clients, victim, rng.uniform(0.5, 3.0))
    result = CycleResult(
        acknowledged=sum(len(load.acknowledged) for load in loads),
        requests=sum(load.requests for load in loads),
        violations=[error for load in loads for error in load.errors],
    )
    before = await snapshot(cluster.url)
    acknowledged = [job_id for load in loads for job_id in load.acknowledged]
    result.violations += [
        f"{job_id}: 202 received, but not in the database" for job_id in acknowledged if job_id not in before
    ]
    result.orphans = sum(row.status == "InProgress" and row.owner == lost_owner for row in before.values())
    await (cluster.start_worker(index) if kind == "worker" else cluster.start_replica(index))
    states, problems = await settle(cluster.urls()[0], sorted(before), rng)
    result.violations += problems
    seen = {job_id: state for load in loads for job_id, state in load.seen_terminal.items()}
    for job_id, after in states.items():
        result.violations += compare(job_id, before.get(job_id), seen.get(job_id), after, lost_owner)
    print(
        f"cycle {number}: killed {kind} {index}: {result.requests} requests, {result.acknowledged} acknowledged, "
        f"{result.orphans} orphans, {len(before)} jobs checked, {len(result.violations)} violations",
        file=out,
        flush=True,
    )
    for violation in result.violations:
        print(f"  VIOLATION {violation}", file=out, flush=True)
    return result


async def run(
    cycles: int,
    seed: int,
    clients: int,
    work: Path,
    server: str,
    out: TextIO = sys.stdout,
    victims: Sequence[tuple[str, int]] = (),
) -> Totals:
    """`victims`: which process each cycle kills, ("worker" or "replica", 0 or 1); the rest are drawn at random."""
    rng = random.Random(seed)
    totals = Totals()
    async with postgres.databases(server) as databases, contextlib.AsyncExitStack() as stack:
        cluster = Cluster(work, await databases.create("crash"), stack)
        for index in range(2):
            await cluster.start_replica(index)
            await cluster.start_worker(index)
        for number in range(1, cycles + 1):
            victim = victims[number - 1] if number <= len(victims) else None
            totals.add(await cycle(cluster, rng, clients, number, out, victim))
    return totals


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=20, help="kills and restarts (default 20)")
    parser.add_argument("--seed", type=int, default=None, help="seed of every random choice (default: fresh, printed)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent REST clients per bridge (default 4)")
    parser.add_argument("--postgres", default=postgres.default_server(), help="server URL (default: %(default)s)")
    args = parser.parse_args(argv)
    reason = postgres.unreachable_reason(args.postgres)
    if reason is not None:
        print(f"crash_pg: {reason}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"crash cycles on PostgreSQL: --seed {seed} --cycles {args.cycles} --clients {args.clients}", flush=True)
    with tempfile.TemporaryDirectory(prefix="fabric-jobs-crash-pg-") as directory:
        totals = asyncio.run(run(args.cycles, seed, args.clients, Path(directory), args.postgres))
    print(totals.summary())
    return 1 if totals.violations else 0


if __name__ == "__main__":
    sys.exit(main())
