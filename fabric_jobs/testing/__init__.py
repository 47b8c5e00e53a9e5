"""Test job handlers through the real stack: fabric-jobs' pytest plugin and what its fixtures give.

Installing fabric-jobs registers the plugin (entry point `pytest11`); its fixtures:

- `fabric_jobs_service`: a FabricJobsService: the JobService on a fresh SQLite file with your registry,
  the REST bridge before it, and helpers (create, wait_for, create_and_wait, cancel, cancel_and_wait);
- `fabric_jobs_client`: a fabric_jobs.client.SyncJobsClient over the in-process channel;
- `fabric_jobs_stub`: a blocking gRPC JobServiceStub over the in-process channel;
- `fabric_jobs_rest`: an httpx.Client of the REST bridge, authentication off (needs httpx:
  `pip install 'fabric-jobs[testing]'`);
- `fabric_jobs_user_tokens`: a UserTokens that the service gets its tokens on behalf of users from, instead of
  Entra: handlers' ctx.access_token and ctx.credential answer `token_for(*scopes)`, `requested` records the
  scopes, `fail_with(TokenUnavailable(...))` makes them raise;
- `fabric_jobs_registry`: the JobRegistry under test, named by `@pytest.mark.fabric_jobs(registry=...)`
  or the `fabric_jobs_registry` ini option; override the fixture to build one in code.

No sockets are opened: `@pytest.mark.fabric_jobs(listen=True)` also opens a loopback gRPC port. The
marker's other keywords are ServiceSettings fields (`cancel_wait=0.5`, `cancel_grace=1.0`, ...).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fabric_jobs.testing.jobs import JobRef
    from fabric_jobs.testing.service import FabricJobsService
    from fabric_jobs.testing.user_tokens import UserTokens

__all__ = ["FabricJobsService", "JobRef", "UserTokens"]

_HOMES = {
    "FabricJobsService": "fabric_jobs.testing.service",
    "JobRef": "fabric_jobs.testing.jobs",
    "UserTokens": "fabric_jobs.testing.user_tokens",
}

if not TYPE_CHECKING:  # loaded on first use: the plugin imports this package while pytest starts

    def __getattr__(name: str) -> object:
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module 'fabric_jobs.testing' has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        globals()[name] = value
        return value
