"""The pytest plugin as a workload author meets it: test files written at run time, run by a fresh pytest."""

from __future__ import annotations

import pytest

JOBS = """
import asyncio

from fabric_jobs import InvalidPayload, JobContext, JobFailed, JobRegistry

ITEM = "Acme.Reports.Report"
registry = JobRegistry()
seen = {}


def validate(payload):
    if not isinstance(payload.get("pages", 1), int | float):
        raise InvalidPayload("pages", "must be a number")


@registry.job(ITEM, "render", validate=validate)
async def render(ctx: JobContext) -> None:
    seen[ctx.key.job_instance_id] = dict(ctx.payload)


@registry.job(ITEM, "waits")
async def waits(ctx: JobContext) -> None:
    await ctx.cancellation.wait()


@registry.job(ITEM, "threadWaits")
def thread_waits(ctx: JobContext) -> None:
    while not ctx.cancellation.wait_blocking(0.05):
        pass


@registry.job(ITEM, "fails")
def fails(ctx: JobContext) -> None:
    raise JobFailed("The report has no pages.", error_code="NoPages", message_parameters=("pages",))


@registry.job(ITEM, "crashes")
async def crashes(ctx: JobContext) -> None:
    raise RuntimeError("the renderer crashed")
"""

INI = """
[pytest]
addopts = -p no:asyncio --strict-markers
filterwarnings = error
"""

USES_EVERY_FIXTURE = """
import grpc
import pytest

from fabric_jobs.testing import FabricJobsService, JobRef
from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc
from jobs import ITEM, seen

pytestmark = pytest.mark.fabric_jobs(registry="jobs:registry", cancel_wait=1.0)


def test_a_job_completes_with_its_payload(fabric_jobs_service: FabricJobsService) -> None:
    job = fabric_jobs_service.create(ITEM, "render", {"pages": 3, "title": "Q3"})
    state = fabric_jobs_service.wait_for(job, "Completed")
    assert set(state) == {"status", "startTimeUtc", "endTimeUtc"}
    assert seen[job.job_instance_id] == {"pages": 3, "title": "Q3"}


def test_a_bad_payload_is_400_naming_the_field(fabric_jobs_service: FabricJobsService) -> None:
    response = fabric_jobs_service.post_create(JobRef(ITEM, "render"), {"pages": "many"})
    assert response.status_code == 400
    assert response.json()["messageParameters"] == ["creationPayload.pages"]


@pytest.mark.parametrize("job_type", ["waits", "threadWaits"])
def test_cancel_stops_a_cooperative_handler(fabric_jobs_service: FabricJobsService, job_type: str) -> None:
    job = fabric_jobs_service.create(ITEM, job_type)
    started = fabric_jobs_service.wait_for(job, "InProgress")
    state = fabric_jobs_service.cancel_and_wait(job)
    assert state["startTimeUtc"] == started["startTimeUtc"]
    assert "endTimeUtc" in state


def test_failures_carry_their_error_details(fabric_jobs_service: FabricJobsService) -> None:
    failed = fabric_jobs_service.create_and_wait(ITEM, "fails", status="Failed")
    assert failed["errorDetails"]["errorCode"] == "NoPages"
    assert failed["errorDetails"]["messageParameters"] == ["pages"]
    crashed = fabric_jobs_service.create_and_wait(ITEM, "crashes", status="Failed")
    assert crashed["errorDetails"]["errorCode"] == "JobExecutionFailed"


def test_the_grpc_stub(fabric_jobs_service: FabricJobsService, fabric_jobs_stub: pb_grpc.JobServiceStub) -> None:
    job = JobRef(ITEM, "waits")
    request = pb.CreateJobInstanceRequest(key=job.key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL)
    assert fabric_jobs_stub.CreateJobInstance(request).created
    fabric_jobs_service.wait_for(job, "InProgress")
    fabric_jobs_stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=job.key))
    changes = list(fabric_jobs_stub.WatchJobInstance(pb.WatchJobInstanceRequest(key=job.key), timeout=10))
    assert changes[-1].job_instance.status == pb.JOB_INSTANCE_STATUS_CANCELLED
    with pytest.raises(grpc.RpcError) as raised:
        fabric_jobs_stub.GetJobInstance(pb.GetJobInstanceRequest(key=JobRef(ITEM, "waits").key))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_the_rest_client(fabric_jobs_rest) -> None:
    job = JobRef(ITEM, "render")
    missing = fabric_jobs_rest.get(job.path, headers=job.headers())
    assert missing.status_code == 404
    assert missing.json()["errorCode"] == "JobInstanceNotFound"
    assert fabric_jobs_rest.get("/healthz").status_code == 200


def test_no_port_unless_asked(fabric_jobs_service: FabricJobsService) -> None:
    with pytest.raises(RuntimeError, match="no port"):
        fabric_jobs_service.grpc_address


@pytest.mark.fabric_jobs(listen=True)
def test_a_loopback_port_when_asked(fabric_jobs_service: FabricJobsService) -> None:
    with grpc.insecure_channel(fabric_jobs_service.grpc_address) as channel:
        with pytest.raises(grpc.RpcError) as raised:
            pb_grpc.JobServiceStub(channel).GetJobInstance(pb.GetJobInstanceRequest(key=JobRef(ITEM, "x").key))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_helpers_also_serve_an_async_test(fabric_jobs_service: FabricJobsService) -> None:
    fabric_jobs_service.create_and_wait(ITEM, "render")
"""


@pytest.fixture
def author(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project of a workload author: a job registry in jobs.py and a pytest configuration."""
    pytester.makeini(INI)
    pytester.makepyfile(jobs=JOBS)
    pytester.syspathinsert()
    return pytester


def test_a_test_file_using_every_fixture_passes(author: pytest.Pytester) -> None:
    author.makepyfile(test_author=USES_EVERY_FIXTURE.replace("async def test_helpers", "def test_helpers"))
    author.runpytest().assert_outcomes(passed=10)


def test_an_async_test_under_pytest_asyncio_may_use_the_helpers(author: pytest.Pytester) -> None:
    author.makepyfile(test_author=USES_EVERY_FIXTURE)
    options = ["addopts=", "asyncio_mode=auto", "asyncio_default_fixture_loop_scope=function"]
    result = author.runpytest(*(f"-o{option}" for option in options), "-k", "async_test")
    result.assert_outcomes(passed=1, deselected=9)


def test_the_registry_from_the_ini_option_or_an_overriding_fixture(author: pytest.Pytester) -> None:
    author.makeini(INI + "fabric_jobs_registry = jobs:registry\n")
    author.makepyfile(
        test_ini="""
        from jobs import ITEM

        def test_from_the_ini_option(fabric_jobs_service):
            assert fabric_jobs_service.create_and_wait(ITEM, "render")["status"] == "Completed"
        """,
        test_override="""
        import pytest
        from fabric_jobs import JobRegistry

        @pytest.fixture
        def fabric_jobs_registry():
            registry = JobRegistry()
            registry.add("Acme.Other.Item", "noop", lambda ctx: None)
            return registry

        def test_built_in_code(fabric_jobs_service):
            assert fabric_jobs_service.create_and_wait("Acme.Other.Item", "noop")["status"] == "Completed"
            response = fabric_jobs_service.post_create(__import__("fabric_jobs.testing").testing.JobRef(
                "Acme.Reports.Report", "render"))
            assert response.json()["errorCode"] == "UnsupportedJobType"
        """,
    )
    author.runpytest().assert_outcomes(passed=2)


def test_a_failing_wait_shows_the_jobs_last_state_and_error_details(author: pytest.Pytester) -> None:
    author.makepyfile(
        test_failing="""
        import pytest
        from jobs import ITEM

        pytestmark = pytest.mark.fabric_jobs(registry="jobs:registry")

        def test_expects_completed(fabric_jobs_service):
            fabric_jobs_service.create_and_wait(ITEM, "fails")

        def test_expects_an_end_too_soon(fabric_jobs_service):
            job = fabric_jobs_service.create(ITEM, "waits")
            fabric_jobs_service.wait_for(job, "Completed", timeout=0.3)
        """
    )
    result = author.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_expects_completed*",
            "*job * (Acme.Reports.Report/fails) ended Failed, not Completed (a terminal status never changes);*",
            '*"status": "Failed",*',
            '*"errorCode": "NoPages",*',
            '*"message": "The report has no pages.",*',
            "*test_expects_an_end_too_soon*",
            "*job * (Acme.Reports.Report/waits) did not reach Completed within 0.3s; its last state:*",
            '*"status": "InProgress",*',
        ]
    )


def test_a_missing_or_wrong_configuration_is_a_clear_error(author: pytest.Pytester) -> None:
    author.makepyfile(
        test_misconfigured="""
        import pytest

        def test_no_registry(fabric_jobs_service):
            pass

        @pytest.mark.fabric_jobs(registry="jobs:nothing_here")
        def test_not_a_registry(fabric_jobs_service):
            pass

        @pytest.mark.fabric_jobs(registry="jobs:registry", cancel_wiat=1.0)
        def test_a_misspelt_setting(fabric_jobs_service):
            pass
        """
    )
    result = author.runpytest()
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        [
            "*fabric_jobs: which job registry? Name it with @pytest.mark.fabric_jobs(registry=*",
            "*fabric_jobs: --jobs: module 'jobs' has no attribute 'nothing_here'*",
            "*@pytest.mark.fabric_jobs: unknown fabric_jobs option(s) cancel_wiat; known: listen, cancel_grace*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


@pytest.mark.timeout(90)
def test_the_plugin_loads_cheaply_and_needs_httpx_only_for_rest(author: pytest.Pytester) -> None:
    """In a fresh interpreter: loading the plugin imports neither grpc nor the JobService; without httpx
    the REST fixture says what to install while the gRPC one works."""
    author.makeconftest(
        """
        import sys

        HEAVY_AT_START = [name for name in ("grpc", "fabric_jobs.server", "starlette") if name in sys.modules]
        sys.modules["httpx"] = None
        """
    )
    author.makepyfile(
        test_fresh="""
        import sys
        import pytest
        from jobs import ITEM
        from fabric_jobs.testing import JobRef
        from fabric_jobs.v1 import job_service_pb2 as pb

        def test_loading_the_plugin_loaded_nothing_heavy():
            from conftest import HEAVY_AT_START

            assert "fabric_jobs.testing.plugin" in sys.modules
            assert HEAVY_AT_START == []

        @pytest.mark.fabric_jobs(registry="jobs:registry")
        def test_rest_without_httpx(fabric_jobs_rest):
            pass

        @pytest.mark.fabric_jobs(registry="jobs:registry")
        def test_grpc_without_httpx(fabric_jobs_stub):
            request = pb.CreateJobInstanceRequest(key=JobRef(ITEM, "render").key, invoke_type=1)
            assert fabric_jobs_stub.CreateJobInstance(request).created
        """
    )
    result = author.runpytest_subprocess(timeout=60)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*the fabric_jobs REST client needs httpx: pip install 'fabric-jobs?testing?'*"])
    result.stdout.no_fnmatch_line("*During handling*")


def test_handlers_that_act_for_their_user_get_tokens_from_the_user_tokens_fixture(author: pytest.Pytester) -> None:
    author.makepyfile(
        acting="""
        from fabric_jobs import JobContext, JobRegistry, TokenUnavailable

        ITEM = "Acme.Reports.Report"
        STORAGE = "https://storage.azure.com/.default"
        FABRIC = "https://api.fabric.microsoft.com/.default"
        registry = JobRegistry()
        seen = {}


        @registry.job(ITEM, "readsOneLake", user_scopes=[STORAGE])
        async def reads_one_lake(ctx: JobContext) -> None:
            seen["async"] = (await ctx.access_token(STORAGE), (await ctx.credential.get_token(FABRIC)).token)
            seen["caller"] = ctx.caller


        @registry.job(ITEM, "plainReads", user_scopes=[STORAGE])
        def plain_reads(ctx: JobContext) -> None:
            seen["plain"] = ctx.credential.get_token(STORAGE, FABRIC).token
        """,
        test_acting="""
        import pytest
        from fabric_jobs import TokenUnavailable
        from acting import FABRIC, ITEM, STORAGE, seen

        pytestmark = pytest.mark.fabric_jobs(registry="acting:registry")


        def test_tokens_per_scope_and_the_scopes_asked(fabric_jobs_service, fabric_jobs_user_tokens):
            fabric_jobs_service.create_and_wait(ITEM, "readsOneLake")
            fabric_jobs_service.create_and_wait(ITEM, "plainReads")

            tokens = fabric_jobs_user_tokens
            assert seen["async"] == (tokens.token_for(STORAGE), tokens.token_for(FABRIC))
            assert seen["plain"] == tokens.token_for(STORAGE, FABRIC)
            assert tokens.requested == [(STORAGE,), (FABRIC,), (STORAGE, FABRIC)]
            assert seen["caller"].user_principal_name == "dev-user@fabric-jobs.invalid"


        def test_told_to_refuse_the_job_fails_as_entra_would_make_it(fabric_jobs_service, fabric_jobs_user_tokens):
            fabric_jobs_user_tokens.fail_with(
                TokenUnavailable("consent_required", "AADSTS65001: no consent", is_permanent=True, correlation_id="c-1")
            )
            state = fabric_jobs_service.create_and_wait(ITEM, "readsOneLake", status="Failed")

            error = state["errorDetails"]
            assert (error["errorCode"], error["isPermanent"]) == ("UserTokenUnavailable", True)
            assert error["moreDetails"][0]["errorCode"] == "consent_required"
            assert error["moreDetails"][0]["additionalParameters"] == [{"name": "correlationId", "value": "c-1"}]
        """,
    )
    author.runpytest().assert_outcomes(passed=2)
