"""The pytest plugin of fabric-jobs, registered through the `pytest11` entry point.

Loading it costs almost nothing (pytest and the standard library): the JobService, the bridge and
httpx are imported by a fixture when a test asks for one. See fabric_jobs.testing for the fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import httpx

    from fabric_jobs.client import SyncJobsClient
    from fabric_jobs.registry import JobRegistry
    from fabric_jobs.testing.service import FabricJobsService
    from fabric_jobs.testing.user_tokens import UserTokens
    from fabric_jobs.v1.job_service_pb2_grpc import JobServiceStub

MARKER = "fabric_jobs"
INI_REGISTRY = "fabric_jobs_registry"
NO_REGISTRY = (
    "fabric_jobs: which job registry? Name it with @pytest.mark.fabric_jobs(registry='package.module:registry'), "
    "with `fabric_jobs_registry = package.module:registry` in the pytest configuration, "
    "or override the fabric_jobs_registry fixture"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(INI_REGISTRY, "fabric_jobs: the job registry the service runs, as package.module:attribute")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(registry='package.module:attribute' or a JobRegistry, listen=False, **service_settings): "
        "the job registry and settings of the fabric_jobs_service fixture",
    )


def _marker_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The keywords of every fabric_jobs marker on the test, its class and module; the closest one wins."""
    options: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        options.update(marker.kwargs)
        if marker.args:
            options["registry"] = marker.args[0]
    return options


@pytest.fixture
def fabric_jobs_registry(request: pytest.FixtureRequest) -> JobRegistry:
    """The JobRegistry the service runs: the marker's `registry`, else the `fabric_jobs_registry` ini option."""
    from fabric_jobs.registry import JobRegistry, load_registry

    spec = _marker_options(request).get("registry") or request.config.getini(INI_REGISTRY)
    if isinstance(spec, JobRegistry):
        return spec
    if not spec or not isinstance(spec, str):
        pytest.fail(NO_REGISTRY, pytrace=False)
    try:
        return load_registry(spec.strip(), not_found_hint="is the package installed, or on pytest's pythonpath?")
    except ValueError as exc:
        wrong = str(exc)
    pytest.fail(f"fabric_jobs: {wrong}", pytrace=False)


@pytest.fixture
def fabric_jobs_user_tokens() -> UserTokens:
    """Tokens on behalf of the job's user without Entra: ctx.access_token and ctx.credential answer each scope set
    with `token_for(*scopes)`, `requested` lists the scopes asked for, `fail_with(TokenUnavailable(...))` refuses."""
    from fabric_jobs.testing.user_tokens import UserTokens

    return UserTokens()


@pytest.fixture
def fabric_jobs_service(
    request: pytest.FixtureRequest,
    fabric_jobs_registry: JobRegistry,
    fabric_jobs_user_tokens: UserTokens,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FabricJobsService]:
    """The JobService on a fresh SQLite file with the registry's job types, its REST bridge, and helpers."""
    from fabric_jobs.testing.service import FabricJobsService

    options = _marker_options(request)
    options.pop("registry", None)
    options.setdefault("user_tokens", fabric_jobs_user_tokens)
    database = "sqlite:///" + str(tmp_path_factory.mktemp("fabric_jobs") / "jobs.db")
    try:
        service = FabricJobsService(fabric_jobs_registry, database, **options)
    except TypeError as exc:
        wrong = str(exc)
        pytest.fail(f"@pytest.mark.{MARKER}: {wrong}", pytrace=False)
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def fabric_jobs_stub(fabric_jobs_service: FabricJobsService) -> JobServiceStub:
    """A blocking JobServiceStub over the in-process channel (replies, status codes and details as over gRPC)."""
    return fabric_jobs_service.stub


@pytest.fixture
def fabric_jobs_client(fabric_jobs_service: FabricJobsService) -> SyncJobsClient:
    """A SyncJobsClient over the in-process channel: typed results, errors as fabric_jobs.client exceptions."""
    return fabric_jobs_service.client


@pytest.fixture
def fabric_jobs_rest(fabric_jobs_service: FabricJobsService) -> httpx.Client:
    """An httpx.Client of the REST bridge (authentication off), over ASGI: paths as Fabric calls them."""
    try:
        return fabric_jobs_service.rest
    except ImportError as exc:
        missing = str(exc)
    pytest.fail(missing, pytrace=False)
