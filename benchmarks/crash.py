"""Crash cycles: SIGKILL `fabric-jobs serve` at random moments under a mixed REST load, restart it on the same
SQLite database, and check that no acknowledged job was lost or changed.

python -m benchmarks.crash [--cycles 20] [--seed S] [--clients 8]      (exit 1 on any violation)

Each cycle loads the service with Create (demo jobs of 0 to 2 s, some failing, some ignoring cancellation),
Get and Cancel from `--clients` concurrent clients, kills it with SIGKILL after a random 0.5 to 3 s, reads the
database file as the kill left it, starts a new process on it and polls every job until it is terminal. Checked:
the database passes `PRAGMA integrity_check`; every job whose Create got a 202 is stored and readable over REST
with a legal state (schema of ItemJobInstanceState, startTimeUtc <= endTimeUtc); a job terminal at the kill, or
seen terminal by a client, is unchanged; a job InProgress at the kill (an orphan) ends Failed with errorCode
JobExecutorLost and isPermanent false; and before the kill no call answered 5xx.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from benchmarks.processes import ServerProcess, serve
from fabric_jobs import demo

TENANT = "7c1d1a1e-0000-4000-8000-00000000c11e"
WORKSPACE = "e5ef604d-e14f-4a59-9133-75d5a0cb9334"
ITEM = "b14cb7e7-d346-4751-9cfd-8c2767d53111"
TERMINAL = frozenset({"Completed", "Failed", "Cancelled"})
STATUSES = frozenset({"NotStarted", "InProgress"}) | TERMINAL
LEASE_SECONDS = 1.0
SETTLE_SECONDS = 60.0
KEEPALIVE_SECONDS = 2.0
"""Idle connections are closed before the server closes them (uvicorn: after 5 s), so no request races a close."""


def job_path(job_id: str) -> str:
    return f"/workspaces/{WORKSPACE}/items/{demo.ITEM_TYPE}/{ITEM}/jobTypes/{demo.JOB_TYPE}/instances/{job_id}"


def headers(rng: random.Random) -> dict[str, str]:
    return {
        "ActivityId": str(uuid.UUID(int=rng.getrandbits(128))),
        "RequestId": str(uuid.UUID(int=rng.getrandbits(128))),
        "x-ms-client-tenant-id": TENANT,
    }


EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def ms(text: str | None) -> int | None:
    """Milliseconds since the epoch of a time as the bridge writes it, exactly (no float on the way)."""
    if text is None:
        return None
    return (datetime.datetime.fromisoformat(text) - EPOCH) // datetime.timedelta(milliseconds=1)


@dataclass
class Stored:
    """A job's row as the kill left it in the database."""

    status: str
    start_ms: int | None
    end_ms: int | None
    owner: str | None = None


@dataclass
class CycleResult:
    acknowledged: int = 0
    requests: int = 0
    orphans: int = 0
    violations: list[str] = field(default_factory=list)


@dataclass
class Totals:
    cycles: int = 0
    acknowledged: int = 0
    requests: int = 0
    orphans: int = 0
    violations: list[str] = field(default_factory=list)

    def add(self, cycle: CycleResult) -> None:
        self.cycles += 1
        self.acknowledged += cycle.acknowledged
        self.requests += cycle.requests
        self.orphans += cycle.orphans
        self.violations += cycle.violations

    def summary(self) -> str:
        return (
            f"{self.cycles} cycles: {self.requests} requests, {self.acknowledged} jobs acknowledged, "
            f"{self.orphans} orphans, {len(self.violations)} lost or corrupted"
        )


ROWS = "SELECT job_instance_id, status, start_time_ms, end_time_ms, owner FROM job_instances"


def snapshot(database: Path) -> tuple[str, dict[str, Stored]]:
    """`PRAGMA integrity_check` and every job row, as the kill left the file (its WAL included)."""
    connection = sqlite3.connect(database)
    try:
        integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
        rows = connection.execute(ROWS).fetchall()
    finally:
        connection.close()
    return integrity, {row[0]: Stored(*row[1:]) for row in rows}


class Load:
    """Concurrent clients sending Create, Get and Cancel until the server stops answering."""

    def __init__(self, url: str, rng: random.Random) -> None:
        limits = httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS)
        self.client = httpx.AsyncClient(base_url=url, timeout=10.0, limits=limits)
        self.rng = rng
        self.acknowledged: list[str] = []
        self.seen_terminal: dict[str, dict[str, Any]] = {}
        self.requests = 0
        self.errors: list[str] = []
        self.killed = False

    def payload(self) -> dict[str, Any]:
        rng = self.rng
        creation: dict[str, Any] = {"durationSeconds": rng.choice([0, 0, 0.1, 0.5, 1, 2])}
        if rng.random() < 0.2:
            creation["outcome"] = "Failed"
        if rng.random() < 0.1:
            creation["ignoreCancellation"] = True
        return {"invokeType": rng.choice(["Manual", "Scheduled"]), "creationPayload": creation}

    async def one(self) -> None:
        rng = self.rng
        choice = rng.random()
        if choice < 0.5 or not self.acknowledged:
            job_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            response = await self.client.post(job_path(job_id), json=self.payload(), headers=headers(rng))
            if response.status_code == 202:
                self.acknowledged.append(job_id)
        else:
            job_id = rng.choice(self.acknowledged)
            suffix = "" if choice < 0.8 else "/cancel"
            method = "GET" if choice < 0.8 else "POST"
            response = await self.client.request(method, job_path(job_id) + suffix, headers=headers(rng))
            if response.status_code == 200 and response.json().get("status") in TERMINAL:
                self.seen_terminal.setdefault(job_id, response.json())
        self.requests += 1
        if response.status_code not in (200, 202) and not self.killed:
            call = f"{response.request.method} {response.request.url.path}"
            self.errors.append(f"{call}: {response.status_code} {response.text[:300]}")

    async def client_loop(self) -> None:
        while not self.killed:
            try:
                await self.one()
            except httpx.TransportError as error:
                if not self.killed:
                    self.errors.append(f"before the kill: {error!r}")


async def load_until_killed(loads: Sequence[Load], clients: int, victim: ServerProcess, kill_after: float) -> None:
    """Run `clients` clients per load; SIGKILL `victim` after `kill_after` seconds; stop the clients."""
    tasks = [asyncio.create_task(load.client_loop()) for load in loads for _ in range(clients)]
    await asyncio.sleep(kill_after)
    victim.kill()
    for load in loads:
        load.killed = True
    await asyncio.gather(*tasks)
    for load in loads:
        await load.client.aclose()


def check_state(job_id: str, body: dict[str, Any]) -> list[str]:
    problems = []
    if body.get("status") not in STATUSES:
        problems.append(f"{job_id}: illegal status {body.get('status')!r}")
    start, end = ms(body.get("startTimeUtc")), ms(body.get("endTimeUtc"))
    if body.get("status") in TERMINAL and end is None:
        problems.append(f"{job_id}: terminal without endTimeUtc: {body}")
    if start is not None and end is not None and start > end:
        problems.append(f"{job_id}: startTimeUtc after endTimeUtc: {body}")
    if body.get("status") == "Failed" and "errorDetails" not in body:
        problems.append(f"{job_id}: Failed without errorDetails: {body}")
    return problems


async def settle(url: str, job_ids: Sequence[str], rng: random.Random) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Poll every job until it is terminal (bounded); their last states and what was wrong on the way."""
    states: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    deadline = time.monotonic() + SETTLE_SECONDS
    request_headers = headers(rng)
    limit = asyncio.Semaphore(16)

    async def poll(client: httpx.AsyncClient, job_id: str) -> None:
        while True:
            async with limit:
                response = await client.get(job_path(job_id), headers=request_headers)
            if response.status_code != 200:
                problems.append(f"{job_id}: stored, but Get answers {response.status_code} {response.text[:300]}")
                return
            states[job_id] = body = response.json()
            problems.extend(check_state(job_id, body))
            if body.get("status") in TERMINAL:
                return
            if time.monotonic() > deadline:
                problems.append(f"{job_id}: not terminal after {SETTLE_SECONDS:.0f}s: {body}")
                return
            await asyncio.sleep(0.1)

    async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
        await asyncio.gather(*(poll(client, job_id) for job_id in job_ids))
    return states, problems


def compare(
    job_id: str, before: Stored | None, seen: dict[str, Any] | None, after: dict[str, Any], lost_owner: str | None
) -> list[str]:
    """What is wrong with a job's state after the restart. `lost_owner`: the owner whose running jobs are orphans
    (None: every job InProgress at the kill is one)."""
    problems = []
    if before is not None and before.status in TERMINAL:
        now = (after.get("status"), ms(after.get("startTimeUtc")), ms(after.get("endTimeUtc")))
        if now != (before.status, before.start_ms, before.end_ms):
            problems.append(f"{job_id}: was {before} at the kill, is {after} after the restart")
    if before is not None and before.status == "InProgress" and lost_owner in (None, before.owner):
        error = after.get("errorDetails", {})
        lost = after.get("status") == "Failed" and error.get("errorCode") == "JobExecutorLost"
        if not (lost and error.get("isPermanent") is False):
            problems.append(f"{job_id}: an orphan (InProgress at the kill) ended {after}")
    if seen is not None:
        fields = ("status", "startTimeUtc", "endTimeUtc")
        if tuple(seen.get(name) for name in fields) != tuple(after.get(name) for name in fields):
            problems.append(f"{job_id}: a client saw {seen}, now {after}")
    return problems


async def cycle(
    server: ServerProcess, database: Path, rng: random.Random, clients: int
) -> tuple[CycleResult, dict[str, Stored], dict[str, dict[str, Any]]]:
    """Load and kill `server`; the result, the rows the kill left and the terminal states clients saw."""
    load = Load("http://" + server.addresses["rest"], rng)
    await load_until_killed([load], clients, server, rng.uniform(0.5, 3.0))
    result = CycleResult(acknowledged=len(load.acknowledged), requests=load.requests, violations=list(load.errors))
    integrity, stored = snapshot(database)
    if integrity != "ok":
        result.violations.append(f"integrity_check after the kill: {integrity}")
    result.violations += [
        f"{job_id}: 202 received, but not in the database" for job_id in load.acknowledged if job_id not in stored
    ]
    result.orphans = sum(row.status == "InProgress" for row in stored.values())
    return result, stored, load.seen_terminal


async def run(cycles: int, seed: int, clients: int, work: Path, out: TextIO = sys.stdout) -> Totals:
    rng = random.Random(seed)
    database = work / "jobs.db"
    url = f"sqlite:///{database}"
    extra = ("--lease-seconds", str(LEASE_SECONDS), "--cancel-wait", "0.2", "--cancel-grace", "1")
    totals = Totals()
    server = serve(work, url, "serve-0", *extra)
    await server.start()
    try:
        for number in range(1, cycles + 1):
            result, before, seen = await cycle(server, database, rng, clients)
            server = serve(work, url, f"serve-{number}", *extra)
            await server.start()
            states, problems = await settle("http://" + server.addresses["rest"], sorted(before), rng)
            result.violations += problems
            for job_id, after in states.items():
                result.violations += compare(job_id, before.get(job_id), seen.get(job_id), after, None)
            totals.add(result)
            print(
                f"cycle {number}: {result.requests} requests, {result.acknowledged} acknowledged, "
                f"{result.orphans} orphans, {len(before)} jobs checked, {len(result.violations)} violations",
                file=out,
                flush=True,
            )
            for violation in result.violations:
                print(f"  VIOLATION {violation}", file=out, flush=True)
    finally:
        await server.stop()
    return totals


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=20, help="kills and restarts (default 20)")
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of every random choice (default: a fresh one, printed)"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent REST clients (default 8)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"crash cycles: --seed {seed} --cycles {args.cycles} --clients {args.clients}", flush=True)
    with tempfile.TemporaryDirectory(prefix="fabric-jobs-crash-") as directory:
        totals = asyncio.run(run(args.cycles, seed, args.clients, Path(directory)))
    print(totals.summary())
    return 1 if totals.violations else 0


if __name__ == "__main__":
    sys.exit(main())
