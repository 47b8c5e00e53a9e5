-- name: abort_running_job_of_key
-- The job running for a key holds the key as its lock (procrastinate_jobs_lock_idx_v1: one 'doing' job per lock).
SELECT procrastinate_cancel_job_v1(id, abort => TRUE, delete_job => FALSE) AS id
FROM procrastinate_jobs
WHERE lock = %(lock)s AND status = 'doing';

-- name: not_started_without_queued_job
SELECT concat_ws('/', tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id) AS key, start_turn
FROM job_instances AS job
WHERE job.status = 'NotStarted'
    AND job.create_time_ms < %(before_ms)s
    AND NOT EXISTS (
        SELECT 1 FROM procrastinate_jobs AS queued
        WHERE queued.queueing_lock = concat_ws('/', job.tenant_id, job.workspace_id, job.item_type, job.item_id,
                                               job.job_type, job.job_instance_id)
            AND queued.status = 'todo'
    )
    AND NOT EXISTS (
        SELECT 1 FROM procrastinate_jobs AS running
        WHERE running.lock = concat_ws('/', job.tenant_id, job.workspace_id, job.item_type, job.item_id,
                                       job.job_type, job.job_instance_id)
            AND running.status = 'doing'
    )
ORDER BY job.start_turn, job.create_time_ms
LIMIT %(limit)s;

-- name: startable_without_queued_job
-- As not_started_without_queued_job under --max-running-per-tenant: only the jobs the cap lets start now (each
-- tenant's oldest, as many as it has places free); a job over the cap waits without a procrastinate job.
SELECT concat_ws('/', tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id) AS key, start_turn
FROM (
    SELECT queued.*,
        row_number() OVER (
            PARTITION BY queued.tenant_id ORDER BY queued.start_turn, queued.create_time_ms, queued.job_instance_id
        ) AS place
    FROM job_instances AS queued
    WHERE queued.status = 'NotStarted'
) AS job
WHERE job.place + (
        SELECT count(*) FROM job_instances AS running
        WHERE running.tenant_id = job.tenant_id AND running.status = 'InProgress'
    ) <= %(max_running)s
    AND job.create_time_ms < %(before_ms)s
    AND NOT EXISTS (
        SELECT 1 FROM procrastinate_jobs AS queued
        WHERE queued.queueing_lock = concat_ws('/', job.tenant_id, job.workspace_id, job.item_type, job.item_id,
                                               job.job_type, job.job_instance_id)
            AND queued.status = 'todo'
    )
    AND NOT EXISTS (
        SELECT 1 FROM procrastinate_jobs AS running
        WHERE running.lock = concat_ws('/', job.tenant_id, job.workspace_id, job.item_type, job.item_id,
                                       job.job_type, job.job_instance_id)
            AND running.status = 'doing'
    )
ORDER BY job.start_turn, job.create_time_ms
LIMIT %(limit)s;

-- name: publish_job_types
WITH gone AS (
    DELETE FROM worker_job_types WHERE seen_ms < %(stale_before_ms)s
)
INSERT INTO worker_job_types (worker, job_types, seen_ms)
VALUES (%(worker)s, %(job_types)s, %(now_ms)s)
ON CONFLICT (worker) DO UPDATE SET job_types = EXCLUDED.job_types, seen_ms = EXCLUDED.seen_ms;

-- name: withdraw_job_types
DELETE FROM worker_job_types WHERE worker = %(worker)s;

-- name: workers_job_types
SELECT worker, job_types
FROM worker_job_types
WHERE seen_ms >= %(stale_before_ms)s AND worker <> %(worker)s
ORDER BY worker;
