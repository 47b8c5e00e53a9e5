"""Progress reported by handlers running in `fabric-jobs worker` processes reaches a JobService in another
process (this one, which runs none) over PostgreSQL: a watcher sees it at once, a tight loop is coalesced by the
worker's --progress-interval, and the last report is kept."""

from __future__ import annotations

import asyncio
import json

from fabric_jobs.v1 import job_service_pb2 as pb
from fabric_jobs.v1 import job_service_pb2_grpc as pb_grpc
from tests import jobs
from tests.conftest import new_key, wait_for_status
from tests.harness import RunningServer, assert_reports_coalesced
from tests.scaleout.conftest import WorkerFactory

INTERVAL = 0.2
IN_PROGRESS = pb.JOB_INSTANCE_STATUS_IN_PROGRESS
COMPLETED = pb.JOB_INSTANCE_STATUS_COMPLETED
CANCELLED = pb.JOB_INSTANCE_STATUS_CANCELLED


async def create(stub: pb_grpc.JobServiceAsyncStub, job_type: str, payload: object) -> pb.JobInstanceKey:
    key = new_key(jobs.ITEM_TYPE, job_type)
    request = pb.CreateJobInstanceRequest(
        key=key, invoke_type=pb.JOB_INVOKE_TYPE_MANUAL, creation_payload_json=json.dumps(payload)
    )
    await stub.CreateJobInstance(request)
    return key


async def test_a_workers_progress_reaches_a_watcher_in_another_process_and_stays_after_a_cancel(
    start_worker: WorkerFactory, service: RunningServer
) -> None:
    await start_worker("--progress-interval", str(INTERVAL))
    key = await create(service.stub, jobs.REPORTS_PROGRESS_THREAD, {"reports": [[5, "warming up"], [75, "mostly"]]})

    async with asyncio.timeout(15):
        async for change in service.stub.WatchJobInstance(pb.WatchJobInstanceRequest(key=key)):
            live = change.job_instance
            if live.progress.message == "mostly":
                break
    assert live.status == IN_PROGRESS
    assert live.progress.percent == 75

    await service.stub.CancelJobInstance(pb.CancelJobInstanceRequest(key=key))
    ended = await wait_for_status(service.stub, key, CANCELLED, within=10)
    assert ended.progress == live.progress


async def test_a_tight_loop_in_a_worker_is_one_write_per_interval_and_its_last_report_is_kept(
    start_worker: WorkerFactory, service: RunningServer, postgres_url: str
) -> None:
    await start_worker("--progress-interval", str(INTERVAL))
    key = await create(service.stub, jobs.FLOODS_PROGRESS_THREAD, {"count": 20_000})

    done = await wait_for_status(service.stub, key, COMPLETED, within=30)

    assert (done.progress.percent, done.progress.message) == (jobs.FINAL_PERCENT, jobs.FINAL_MESSAGE)
    await assert_reports_coalesced(postgres_url, done, INTERVAL)
