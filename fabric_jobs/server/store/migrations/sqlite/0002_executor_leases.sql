-- The lease of running jobs is renewed once per executor, not once per job: with 10,000 jobs
-- running, renewing every job's row blocked the event loop for about 55 ms every lease/3 seconds.
-- job_instances.heartbeat_ms now keeps the claim time, which covers a job until its executor's
-- first renewal.
CREATE TABLE executor_leases (
    owner TEXT PRIMARY KEY,
    renewed_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX job_instances_cancel_requested_by_owner ON job_instances (owner)
    WHERE status = 'InProgress' AND cancel_requested = 1;
