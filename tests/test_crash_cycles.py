"""Crash cycles in CI: `fabric-jobs serve` killed with SIGKILL under load and restarted on its SQLite file, and on
PostgreSQL a worker or a `grpc` replica killed and restarted, a few times each (`python -m benchmarks.crash` and
`python -m benchmarks.crash_pg` run the long modes)."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from benchmarks import crash, crash_pg


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_no_acknowledged_job_is_lost_or_changed_across_kills(rng: random.Random, tmp_path: Path) -> None:
    out = io.StringIO()
    totals = await crash.run(cycles=2, seed=rng.randrange(2**32), clients=4, work=tmp_path, out=out)
    print(out.getvalue())
    assert totals.violations == []
    assert totals.cycles == 2
    assert totals.acknowledged > 0
    assert totals.orphans > 0, "no job was running at a kill: the cycles proved nothing about orphans"


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_no_acknowledged_job_is_lost_when_workers_and_replicas_die(
    rng: random.Random, tmp_path: Path, postgres_server: str
) -> None:
    out = io.StringIO()
    victims = [("worker", rng.randrange(2)), ("replica", rng.randrange(2))]
    seed = rng.randrange(2**32)
    totals = await crash_pg.run(2, seed, clients=2, work=tmp_path, server=postgres_server, out=out, victims=victims)
    print(out.getvalue())
    assert totals.violations == []
    assert totals.cycles == 2
    assert totals.acknowledged > 0
