-- name: take_migration_lock
SELECT pg_advisory_xact_lock(%(lock_key)s);

-- name: create_schema_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    applied_at_ms BIGINT NOT NULL
);

-- name: applied_migration_versions
SELECT version FROM schema_migrations ORDER BY version;

-- name: schema_migrations_exists
SELECT to_regclass('schema_migrations') IS NOT NULL AS exists;

-- name: record_migration
INSERT INTO schema_migrations (version, applied_at_ms) VALUES (%(version)s, %(applied_at_ms)s);

-- name: insert_job
INSERT INTO job_instances (
    tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id,
    status, invoke_type, creation_payload, create_time_ms, trace_context, caller, start_turn, start_deadline_ms, timeout_ms
)
VALUES (
    %(tenant_id)s, %(workspace_id)s, %(item_type)s, %(item_id)s, %(job_type)s, %(job_instance_id)s,
    'NotStarted', %(invoke_type)s, %(creation_payload)s, %(create_time_ms)s, %(trace_context)s,
    %(caller)s,
    -- Its turn among every tenant's queued jobs (migration 0070): after its tenant's last, never before the first.
    GREATEST(
        (SELECT coalesce(min(start_turn), 0) FROM job_instances WHERE status = 'NotStarted'),
        (SELECT coalesce(max(start_turn) + 1, 0) FROM job_instances
         WHERE tenant_id = %(tenant_id)s AND status = 'NotStarted')
    ),
    %(start_deadline_ms)s, %(timeout_ms)s
)
ON CONFLICT DO NOTHING
RETURNING *;

-- name: get_job
SELECT *
FROM job_instances
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s AND item_type = %(item_type)s
    AND item_id = %(item_id)s AND job_type = %(job_type)s AND job_instance_id = %(job_instance_id)s;

-- name: move_to_not_started
UPDATE job_instances
SET status = 'NotStarted',
    start_time_ms = NULL,
    owner = NULL,
    heartbeat_ms = NULL,
    version = version + 1
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s AND item_type = %(item_type)s
    AND item_id = %(item_id)s AND job_type = %(job_type)s AND job_instance_id = %(job_instance_id)s
    AND status = ANY(%(expected_statuses)s::text[])
    AND status NOT IN ('Completed', 'Failed', 'Cancelled')
RETURNING *;

-- name: move_to_in_progress
-- A job past its start deadline is never claimed: it ends Failed (expire_start_deadline_of_job) instead.
UPDATE job_instances
SET status = 'InProgress',
    start_time_ms = %(at_ms)s,
    owner = %(owner)s,
    heartbeat_ms = %(at_ms)s,
    run_deadline_ms = %(at_ms)s + timeout_ms,
    version = version + 1
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s AND item_type = %(item_type)s
    AND item_id = %(item_id)s AND job_type = %(job_type)s AND job_instance_id = %(job_instance_id)s
    AND status = ANY(%(expected_statuses)s::text[])
    AND status NOT IN ('Completed', 'Failed', 'Cancelled')
    AND (start_deadline_ms IS NULL OR start_deadline_ms > %(at_ms)s)
RETURNING *;

-- name: claim_within_cap
-- NotStarted -> InProgress under the per-tenant cap (migration 0070's function says how).
-- Like claim, it never starts a job past its start deadline.
SELECT * FROM fabric_jobs_claim_within_cap(
    %(tenant_id)s, %(workspace_id)s, %(item_type)s, %(item_id)s, %(job_type)s, %(job_instance_id)s,
    %(at_ms)s, %(owner)s, %(max_running)s
);

-- name: move_to_terminal
UPDATE job_instances
SET status = %(new_status)s,
    end_time_ms = %(at_ms)s,
    error = %(error)s,
    version = version + 1
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s AND item_type = %(item_type)s
    AND item_id = %(item_id)s AND job_type = %(job_type)s AND job_instance_id = %(job_instance_id)s
    AND status = ANY(%(expected_statuses)s::text[])
    AND status NOT IN ('Completed', 'Failed', 'Cancelled')
RETURNING *;

-- name: cancel
UPDATE job_instances
SET status = CASE WHEN status = 'NotStarted' THEN 'Cancelled' ELSE status END,
    end_time_ms = CASE WHEN status = 'NotStarted' THEN %(at_ms)s ELSE end_time_ms END,
    cancel_requested = TRUE,
    version = version + 1
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s AND item_type = %(item_type)s
    AND item_id = %(item_id)s AND job_type = %(job_type)s AND job_instance_id = %(job_instance_id)s
    AND (status = 'NotStarted' OR (status = 'InProgress' AND NOT cancel_requested))
RETURNING *;

-- name: report_progress
-- Only while the job runs on the executor that reports (a job that ended, or that another executor took, keeps
-- its status and its progress); the status is never touched.
UPDATE job_instances
SET progress_percent = %(percent)s,
    progress_message = %(message)s,
    progress_time_ms = %(at_ms)s,
    version = version + 1
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s AND item_type = %(item_type)s
    AND item_id = %(item_id)s AND job_type = %(job_type)s AND job_instance_id = %(job_instance_id)s
    AND status = 'InProgress' AND owner = %(owner)s
RETURNING *;

-- name: list_jobs
SELECT *
FROM job_instances
WHERE tenant_id = %(tenant_id)s
    AND (create_time_ms, job_instance_id, workspace_id, item_type, item_id, job_type)
        < (%(after_create_time_ms)s, %(after_job_instance_id)s, %(after_workspace_id)s,
           %(after_item_type)s, %(after_item_id)s, %(after_job_type)s)
    AND (%(workspace_id)s::text IS NULL OR workspace_id = %(workspace_id)s)
    AND (%(item_type)s::text IS NULL OR item_type = %(item_type)s)
    AND (%(item_id)s::text IS NULL OR item_id = %(item_id)s)
    AND (%(job_type)s::text IS NULL OR job_type = %(job_type)s)
    AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s::text[]))
ORDER BY create_time_ms DESC, job_instance_id DESC, workspace_id DESC,
    item_type DESC, item_id DESC, job_type DESC
LIMIT %(limit)s;

-- name: queued_in_turn
-- The NotStarted jobs, in the order they should start: by turn (migration 0070), then oldest first.
SELECT tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, start_turn
FROM job_instances
WHERE status = 'NotStarted'
ORDER BY start_turn, create_time_ms
LIMIT %(limit)s;

-- name: startable_within_cap
-- The NotStarted jobs that the per-tenant cap lets start now (of every tenant):
-- each tenant's oldest, as many as it has places free, in the order they should start.
SELECT tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, start_turn
FROM (
    SELECT queued.*,
        row_number() OVER (
            PARTITION BY queued.tenant_id ORDER BY queued.start_turn, queued.create_time_ms, queued.job_instance_id
        ) AS place
    FROM job_instances AS queued
    WHERE queued.status = 'NotStarted'
) AS waiting
WHERE waiting.place + (
        SELECT count(*) FROM job_instances AS running
        WHERE running.tenant_id = waiting.tenant_id AND running.status = 'InProgress'
    ) <= %(max_running)s
ORDER BY waiting.start_turn, waiting.create_time_ms
LIMIT %(limit)s;

-- name: startable_of_tenant
-- As startable_within_cap, for one tenant: its oldest NotStarted jobs, as many as it has places free.
SELECT tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, start_turn
FROM job_instances
WHERE tenant_id = %(tenant_id)s AND status = 'NotStarted'
ORDER BY start_turn, create_time_ms, job_instance_id
LIMIT GREATEST(0, LEAST(%(limit)s, %(max_running)s - (
    SELECT count(*) FROM job_instances
    WHERE tenant_id = %(tenant_id)s AND status = 'InProgress'
)));

-- name: renew_executor_lease
INSERT INTO executor_leases (owner, renewed_ms) VALUES (%(owner)s, %(at_ms)s)
ON CONFLICT (owner) DO UPDATE SET renewed_ms = excluded.renewed_ms;

-- name: cancel_requested_of_owner
SELECT tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id
FROM job_instances
WHERE owner = %(owner)s AND status = 'InProgress' AND cancel_requested;

-- name: fail_expired
-- A lost job past its run deadline ended by its timeout, not by its executor's death.
UPDATE job_instances
SET status = 'Failed',
    end_time_ms = %(at_ms)s,
    error = CASE WHEN run_deadline_ms <= %(at_ms)s THEN %(timeout_error)s ELSE %(error)s END,
    version = version + 1
WHERE status = 'InProgress'
    AND heartbeat_ms < %(at_ms)s - %(lease_ms)s
    AND NOT EXISTS (
        SELECT 1 FROM executor_leases AS lease
        WHERE lease.owner = job_instances.owner AND lease.renewed_ms >= %(at_ms)s - %(lease_ms)s
    )
RETURNING *;

-- name: forget_expired_executor_leases
DELETE FROM executor_leases WHERE renewed_ms < %(at_ms)s - %(lease_ms)s;

-- name: announce_changes
SELECT fabric_jobs_announce_changes(%(keys)s);

-- name: search_jobs
-- Sorted by create_time_ms + 0 to use job_instances_newest_first (migration 0003 says why).
SELECT *
FROM job_instances
WHERE (create_time_ms + 0, job_instance_id, workspace_id, item_type, item_id, job_type, tenant_id)
        < (%(after_create_time_ms)s, %(after_job_instance_id)s, %(after_workspace_id)s,
           %(after_item_type)s, %(after_item_id)s, %(after_job_type)s, %(after_tenant_id)s)
    AND (%(tenant_id)s::text IS NULL OR tenant_id = %(tenant_id)s)
    AND (%(workspace_id)s::text IS NULL OR workspace_id = %(workspace_id)s)
    AND (%(item_type)s::text IS NULL OR item_type = %(item_type)s)
    AND (%(item_id)s::text IS NULL OR item_id = %(item_id)s)
    AND (%(job_type)s::text IS NULL OR job_type = %(job_type)s)
    AND (%(job_instance_id)s::text IS NULL OR job_instance_id = %(job_instance_id)s)
    AND (%(created_since_ms)s::bigint IS NULL OR create_time_ms >= %(created_since_ms)s::bigint)
    AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s::text[]))
ORDER BY create_time_ms + 0 DESC, job_instance_id DESC, workspace_id DESC,
    item_type DESC, item_id DESC, job_type DESC, tenant_id DESC
LIMIT %(limit)s;

-- name: count_jobs_by_status
SELECT status, count(*) AS count
FROM job_instances
WHERE (%(tenant_id)s::text IS NULL OR tenant_id = %(tenant_id)s)
    AND (%(workspace_id)s::text IS NULL OR workspace_id = %(workspace_id)s)
    AND (%(item_type)s::text IS NULL OR item_type = %(item_type)s)
    AND (%(item_id)s::text IS NULL OR item_id = %(item_id)s)
    AND (%(job_type)s::text IS NULL OR job_type = %(job_type)s)
    AND (%(job_instance_id)s::text IS NULL OR job_instance_id = %(job_instance_id)s)
    AND (%(created_since_ms)s::bigint IS NULL OR create_time_ms >= %(created_since_ms)s::bigint)
    AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s::text[]))
GROUP BY status;

-- name: transitions_of_job
SELECT seq, status, cancel_requested, at_ms
FROM job_transitions
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s AND item_type = %(item_type)s
    AND item_id = %(item_id)s AND job_type = %(job_type)s AND job_instance_id = %(job_instance_id)s
    AND NOT progress
ORDER BY seq;

-- name: changes_after
SELECT change.seq AS change_seq, job.*
FROM job_transitions AS change
JOIN job_instances AS job
    ON job.tenant_id = change.tenant_id AND job.workspace_id = change.workspace_id
    AND job.item_type = change.item_type AND job.item_id = change.item_id
    AND job.job_type = change.job_type AND job.job_instance_id = change.job_instance_id
WHERE change.seq > %(after_seq)s
ORDER BY change.seq
LIMIT %(limit)s;

-- name: last_change_seq
SELECT coalesce(max(seq), 0) AS seq FROM job_transitions;

-- name: purge_jobs
-- One bounded batch, by one process at a time: under a transaction-level advisory lock that it only tries
-- (another pruner holding it makes this batch delete nothing and answer held = false), the `limit` terminal
-- jobs the filter covers that ended longest before `before_ms` (rows another transaction has locked are
-- skipped, not waited for), with their procrastinate jobs and those jobs' events (ON DELETE CASCADE); their
-- history and stored credentials go with them (trigger, foreign key). A job whose procrastinate job is
-- still running (a worker finishing a job already ended elsewhere) waits for a later batch.
WITH pruner AS MATERIALIZED (
    SELECT pg_try_advisory_xact_lock(%(lock_key)s) AS held
),
doomed AS MATERIALIZED (
    SELECT job.tenant_id, job.workspace_id, job.item_type, job.item_id, job.job_type, job.job_instance_id,
        concat_ws('/', job.tenant_id, job.workspace_id, job.item_type, job.item_id, job.job_type,
                  job.job_instance_id) AS lock_text
    FROM job_instances AS job
    WHERE (SELECT held FROM pruner)
        AND job.status IN ('Completed', 'Failed', 'Cancelled')
        AND job.end_time_ms < %(before_ms)s
        AND (%(tenant_id)s::text IS NULL OR job.tenant_id = %(tenant_id)s)
        AND (%(workspace_id)s::text IS NULL OR job.workspace_id = %(workspace_id)s)
        AND (%(item_type)s::text IS NULL OR job.item_type = %(item_type)s)
        AND (%(item_id)s::text IS NULL OR job.item_id = %(item_id)s)
        AND (%(job_type)s::text IS NULL OR job.job_type = %(job_type)s)
        AND (%(job_instance_id)s::text IS NULL OR job.job_instance_id = %(job_instance_id)s)
        AND (%(created_since_ms)s::bigint IS NULL OR job.create_time_ms >= %(created_since_ms)s)
        AND (%(statuses)s::text[] IS NULL OR job.status = ANY(%(statuses)s::text[]))
        AND NOT EXISTS (
            SELECT 1 FROM procrastinate_jobs AS running
            WHERE running.lock = concat_ws('/', job.tenant_id, job.workspace_id, job.item_type, job.item_id,
                                           job.job_type, job.job_instance_id)
                AND running.status = 'doing'
        )
    ORDER BY job.end_time_ms
    LIMIT %(limit)s
    FOR UPDATE OF job SKIP LOCKED
),
queued AS (
    DELETE FROM procrastinate_jobs AS queued
    USING doomed
    WHERE queued.lock = doomed.lock_text AND queued.status <> 'doing'
),
gone AS (
    DELETE FROM job_instances AS job
    USING doomed
    WHERE job.tenant_id = doomed.tenant_id AND job.workspace_id = doomed.workspace_id
        AND job.item_type = doomed.item_type AND job.item_id = doomed.item_id
        AND job.job_type = doomed.job_type AND job.job_instance_id = doomed.job_instance_id
    RETURNING 1
)
SELECT (SELECT held FROM pruner) AS held, (SELECT count(*) FROM gone) AS purged;

-- name: count_purgeable
SELECT count(*) AS count
FROM job_instances
WHERE status IN ('Completed', 'Failed', 'Cancelled')
    AND end_time_ms < %(before_ms)s
    AND (%(tenant_id)s::text IS NULL OR tenant_id = %(tenant_id)s)
    AND (%(workspace_id)s::text IS NULL OR workspace_id = %(workspace_id)s)
    AND (%(item_type)s::text IS NULL OR item_type = %(item_type)s)
    AND (%(item_id)s::text IS NULL OR item_id = %(item_id)s)
    AND (%(job_type)s::text IS NULL OR job_type = %(job_type)s)
    AND (%(job_instance_id)s::text IS NULL OR job_instance_id = %(job_instance_id)s)
    AND (%(created_since_ms)s::bigint IS NULL OR create_time_ms >= %(created_since_ms)s)
    AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s::text[]));
-- name: get_credential
SELECT sealed
FROM job_credentials
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s AND item_type = %(item_type)s
    AND item_id = %(item_id)s AND job_type = %(job_type)s AND job_instance_id = %(job_instance_id)s;

-- name: replace_credential
UPDATE job_credentials
SET sealed = %(sealed)s
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s AND item_type = %(item_type)s
    AND item_id = %(item_id)s AND job_type = %(job_type)s AND job_instance_id = %(job_instance_id)s;

-- name: insert_credential
INSERT INTO job_credentials (tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, sealed)
VALUES (
    %(tenant_id)s, %(workspace_id)s, %(item_type)s, %(item_id)s, %(job_type)s, %(job_instance_id)s, %(sealed)s
);

-- name: expire_start_deadlines
-- At most `limit` NotStarted jobs past their start deadline end Failed, and the procrastinate jobs queued to
-- carry them to a worker are deleted (one a worker already took finds the job ended and skips it).
WITH expired AS (
    UPDATE job_instances
    SET status = 'Failed',
        end_time_ms = %(at_ms)s,
        error = %(error)s,
        version = version + 1
    WHERE (tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id) IN (
            SELECT tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id
            FROM job_instances
            WHERE status = 'NotStarted' AND start_deadline_ms IS NOT NULL AND start_deadline_ms <= %(at_ms)s
            ORDER BY start_deadline_ms
            LIMIT %(limit)s
        )
        AND status = 'NotStarted'
    RETURNING *
),
unqueued AS (
    DELETE FROM procrastinate_jobs AS queued
    USING expired
    WHERE queued.queueing_lock = concat_ws('/', expired.tenant_id, expired.workspace_id, expired.item_type,
                                           expired.item_id, expired.job_type, expired.job_instance_id)
        AND queued.status = 'todo'
)
SELECT * FROM expired;

-- name: expire_start_deadline_of_job
UPDATE job_instances
SET status = 'Failed',
    end_time_ms = %(at_ms)s,
    error = %(error)s,
    version = version + 1
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s AND item_type = %(item_type)s
    AND item_id = %(item_id)s AND job_type = %(job_type)s AND job_instance_id = %(job_instance_id)s
    AND status = 'NotStarted' AND start_deadline_ms <= %(at_ms)s
RETURNING *;

-- name: time_out_overdue
-- The safety net of timeouts: at most `limit` running jobs whose run deadline passed before `before_ms` (long
-- enough ago that their executor, if alive, would have ended them) end Failed.
UPDATE job_instances
SET status = 'Failed',
    end_time_ms = %(at_ms)s,
    error = %(error)s,
    version = version + 1
WHERE (tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id) IN (
        SELECT tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id
        FROM job_instances
        WHERE status = 'InProgress' AND run_deadline_ms IS NOT NULL AND run_deadline_ms < %(before_ms)s
        ORDER BY run_deadline_ms
        LIMIT %(limit)s
    )
    AND status = 'InProgress'
RETURNING *;

-- name: fail_lost_job
-- A running job whose executor was found dead; past its run deadline it ended by its timeout.
UPDATE job_instances
SET status = 'Failed',
    end_time_ms = %(at_ms)s,
    error = CASE WHEN run_deadline_ms <= %(at_ms)s THEN %(timeout_error)s ELSE %(error)s END,
    version = version + 1
WHERE tenant_id = %(tenant_id)s AND workspace_id = %(workspace_id)s AND item_type = %(item_type)s
    AND item_id = %(item_id)s AND job_type = %(job_type)s AND job_instance_id = %(job_instance_id)s
    AND status = 'InProgress'
RETURNING *;
