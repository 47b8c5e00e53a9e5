"""The workload's registry under test writes into a fresh directory per test and reads a local OneLake stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fabric_jobs import JobRegistry
from fabric_jobs.testing import UserTokens

from forecast_workload.jobs import ONELAKE_SCOPE, create_registry
from onelake import OneLake, RunningOneLake


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    return tmp_path / "forecasts"


@pytest.fixture
def onelake(tmp_path: Path, fabric_jobs_user_tokens: UserTokens) -> Iterator[OneLake]:
    """OneLake's DFS endpoint, accepting the token the plugin's user tokens give for OneLake's scope."""
    lake = OneLake(token=fabric_jobs_user_tokens.token_for(ONELAKE_SCOPE))
    running = RunningOneLake(lake, tmp_path)
    try:
        yield lake
    finally:
        running.close()


@pytest.fixture
def fabric_jobs_registry(output_dir: Path, onelake: OneLake) -> JobRegistry:
    """Overrides the plugin's fixture: the service runs this registry."""
    return create_registry(output_dir, onelake_url=onelake.url, onelake_ca=onelake.ca_file)
