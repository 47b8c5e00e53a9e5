"""The soak in CI: 30 seconds of Create, Get as Fabric polls and Cancel against a real `fabric-jobs serve`
(`python -m benchmarks.soak` runs the long mode). Errors only: timing is the benchmark's business."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from benchmarks import soak


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_thirty_seconds_of_load_without_an_error(rng: random.Random, tmp_path: Path) -> None:
    out = io.StringIO()
    result = await soak.run(30.0, rate=20.0, interval=10.0, poll=0.5, seed=rng.randrange(2**32), work=tmp_path, out=out)
    print(out.getvalue())
    assert result.errors == []
    assert result.jobs >= 500
    assert len(result.rss_mib) >= 3
