"""The workload's registry under test writes into a fresh directory per test."""

from __future__ import annotations

from pathlib import Path

import pytest
from fabric_jobs import JobRegistry

from forecast_workload.jobs import create_registry


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    return tmp_path / "forecasts"


@pytest.fixture
def fabric_jobs_registry(output_dir: Path) -> JobRegistry:
    """Overrides the plugin's fixture: the service runs this registry."""
    return create_registry(output_dir)
