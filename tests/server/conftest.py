"""Fixtures of the server tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server.handlers import TestJobs


@pytest.fixture
def jobs() -> Iterator[TestJobs]:
    """The test job types, registered fresh for each test."""
    with TestJobs() as jobs:
        yield jobs
