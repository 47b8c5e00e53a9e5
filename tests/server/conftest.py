"""Fixtures of the server tests."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from tests.server.handlers import TestJobs


@pytest.fixture
def jobs(rng: random.Random) -> Iterator[TestJobs]:
    """The test job types, registered fresh for each test."""
    with TestJobs(rng) as jobs:
        yield jobs
