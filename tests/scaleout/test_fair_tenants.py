"""Fair tenants across real processes: two `fabric-jobs worker` processes and a JobService replica share one
PostgreSQL database; --max-running-per-tenant holds for the tenant's jobs in both workers together, as the
handlers themselves log it, and every job runs once."""

from __future__ import annotations

from pathlib import Path

from fabric_jobs.v1 import job_service_pb2 as pb
from tests import jobs
from tests.conftest import new_key
from tests.harness import eventually
from tests.scaleout.conftest import ServiceFactory, WorkerFactory, gauge_log

CAP = 2
TENANT_A = "a1a1a1a1-0000-4000-8000-00000000000a"
TENANT_B = "b1b1b1b1-0000-4000-8000-00000000000b"


async def test_the_cap_holds_across_two_worker_processes_and_each_job_runs_once(
    start_worker: WorkerFactory, start_service: ServiceFactory, run_log: Path
) -> None:
    options = ("--max-running-per-tenant", str(CAP), "--concurrency", "4")
    await start_worker(*options)
    await start_worker(*options)
    service = await start_service(max_running_per_tenant=CAP)
    keys = [new_key(jobs.ITEM_TYPE, jobs.GAUGED, tenant_id=TENANT_A) for _ in range(12)]
    keys += [new_key(jobs.ITEM_TYPE, jobs.GAUGED, tenant_id=TENANT_B) for _ in range(4)]
    for key in keys:
        request = pb.CreateJobInstanceRequest(
            key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL, creation_payload_json='{"delaySeconds": 0.1}'
        )
        await service.stub.CreateJobInstance(request)

    async def all_completed() -> bool:
        replies = [await service.stub.GetJobInstance(pb.GetJobInstanceRequest(key=key)) for key in keys]
        return all(reply.job_instance.status == pb.JOB_INSTANCE_STATUS_COMPLETED for reply in replies)

    await eventually(all_completed, within=30, what="every job completing")
    most = jobs.most_running_in_gauge_log(gauge_log(run_log))
    assert 1 <= most[TENANT_A] <= CAP, most
    assert 1 <= most[TENANT_B] <= CAP, most
    assert jobs.read_run_log(run_log) == {key.job_instance_id: 1 for key in keys}
