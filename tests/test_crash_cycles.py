"""Crash cycles in CI: `fabric-jobs serve` killed with SIGKILL under load and restarted on its SQLite file, a few
times (`python -m benchmarks.crash` runs the long mode)."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from benchmarks import crash


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
