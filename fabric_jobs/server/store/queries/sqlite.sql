-- name: create_schema_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    applied_at_ms INTEGER NOT NULL
);

-- name: applied_migration_versions
SELECT version FROM schema_migrations ORDER BY version;

-- name: record_migration
INSERT INTO schema_migrations (version, applied_at_ms) VALUES (:version, :applied_at_ms);

-- name: insert_job
INSERT INTO job_instances (
    tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id,
    status, invoke_type, creation_payload, create_time_ms, trace_context, caller, start_turn, start_deadline_ms, timeout_ms
)
VALUES (
    :tenant_id, :workspace_id, :item_type, :item_id, :job_type, :job_instance_id,
    'NotStarted', :invoke_type, :creation_payload, :create_time_ms, :trace_context,
    :caller,
    -- Its turn among every tenant's queued jobs (migration 0070): after its tenant's last, never before the first.
    max(
        (SELECT coalesce(min(start_turn), 0) FROM job_instances INDEXED BY job_instances_queued_in_turn
         WHERE status = 'NotStarted'),
        (SELECT coalesce(max(start_turn) + 1, 0) FROM job_instances INDEXED BY job_instances_queued_by_tenant
         WHERE tenant_id = :tenant_id AND status = 'NotStarted')
    ),
    :start_deadline_ms, :timeout_ms
)
ON CONFLICT DO NOTHING
RETURNING *;

-- name: get_job
SELECT *
FROM job_instances
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id AND item_type = :item_type
    AND item_id = :item_id AND job_type = :job_type AND job_instance_id = :job_instance_id;

-- name: move_to_not_started
UPDATE job_instances
SET status = 'NotStarted',
    start_time_ms = NULL,
    owner = NULL,
    heartbeat_ms = NULL,
    version = version + 1
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id AND item_type = :item_type
    AND item_id = :item_id AND job_type = :job_type AND job_instance_id = :job_instance_id
    AND status IN (SELECT value FROM json_each(:expected_statuses))
    AND status NOT IN ('Completed', 'Failed', 'Cancelled')
RETURNING *;

-- name: move_to_in_progress
-- A job past its start deadline is never claimed: it ends Failed (expire_start_deadline_of_job) instead.
UPDATE job_instances
SET status = 'InProgress',
    start_time_ms = :at_ms,
    owner = :owner,
    heartbeat_ms = :at_ms,
    run_deadline_ms = :at_ms + timeout_ms,
    version = version + 1
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id AND item_type = :item_type
    AND item_id = :item_id AND job_type = :job_type AND job_instance_id = :job_instance_id
    AND status IN (SELECT value FROM json_each(:expected_statuses))
    AND status NOT IN ('Completed', 'Failed', 'Cancelled')
    AND (start_deadline_ms IS NULL OR start_deadline_ms > :at_ms)
RETURNING *;

-- name: claim_within_cap
-- NotStarted -> InProgress only while the tenant has fewer than :max_running jobs running and no older queued job
-- that the cap lets start first (SQLite has one writer: the counts are those the update sees). Without the
-- statistics of ANALYZE, SQLite would count through the status index, every tenant's rows: INDEXED BY says which.
UPDATE job_instances
SET status = 'InProgress',
    start_time_ms = :at_ms,
    owner = :owner,
    heartbeat_ms = :at_ms,
    run_deadline_ms = :at_ms + timeout_ms,
    version = version + 1
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id AND item_type = :item_type
    AND item_id = :item_id AND job_type = :job_type AND job_instance_id = :job_instance_id
    AND status = 'NotStarted'
    AND (start_deadline_ms IS NULL OR start_deadline_ms > :at_ms)
    AND (SELECT count(*) FROM (
            SELECT 1 FROM job_instances AS running INDEXED BY job_instances_running_by_tenant
            WHERE running.tenant_id = :tenant_id AND running.status = 'InProgress'
            LIMIT :max_running))
        + (SELECT count(*) FROM (
            SELECT 1 FROM job_instances AS older INDEXED BY job_instances_queued_by_tenant
            WHERE older.tenant_id = :tenant_id AND older.status = 'NotStarted'
                AND (older.start_turn, older.create_time_ms, older.job_instance_id)
                    < (job_instances.start_turn, job_instances.create_time_ms, job_instances.job_instance_id)
            LIMIT :max_running))
        < :max_running
RETURNING *;

-- name: move_to_terminal
UPDATE job_instances
SET status = :new_status,
    end_time_ms = :at_ms,
    error = :error,
    version = version + 1
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id AND item_type = :item_type
    AND item_id = :item_id AND job_type = :job_type AND job_instance_id = :job_instance_id
    AND status IN (SELECT value FROM json_each(:expected_statuses))
    AND status NOT IN ('Completed', 'Failed', 'Cancelled')
RETURNING *;

-- name: cancel
UPDATE job_instances
SET status = CASE status WHEN 'NotStarted' THEN 'Cancelled' ELSE status END,
    end_time_ms = CASE status WHEN 'NotStarted' THEN :at_ms ELSE end_time_ms END,
    cancel_requested = 1,
    version = version + 1
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id AND item_type = :item_type
    AND item_id = :item_id AND job_type = :job_type AND job_instance_id = :job_instance_id
    AND (status = 'NotStarted' OR (status = 'InProgress' AND cancel_requested = 0))
RETURNING *;

-- name: report_progress
-- Only while the job runs on the executor that reports (a job that ended, or that another executor took, keeps
-- its status and its progress); the status is never touched.
UPDATE job_instances
SET progress_percent = :percent,
    progress_message = :message,
    progress_time_ms = :at_ms,
    version = version + 1
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id AND item_type = :item_type
    AND item_id = :item_id AND job_type = :job_type AND job_instance_id = :job_instance_id
    AND status = 'InProgress' AND owner = :owner
RETURNING *;

-- name: list_jobs
SELECT *
FROM job_instances
WHERE tenant_id = :tenant_id
    AND (create_time_ms, job_instance_id, workspace_id, item_type, item_id, job_type)
        < (:after_create_time_ms, :after_job_instance_id, :after_workspace_id,
           :after_item_type, :after_item_id, :after_job_type)
    AND (:workspace_id IS NULL OR workspace_id = :workspace_id)
    AND (:item_type IS NULL OR item_type = :item_type)
    AND (:item_id IS NULL OR item_id = :item_id)
    AND (:job_type IS NULL OR job_type = :job_type)
    AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)))
ORDER BY create_time_ms DESC, job_instance_id DESC, workspace_id DESC,
    item_type DESC, item_id DESC, job_type DESC
LIMIT :limit;

-- name: queued_in_turn
-- The NotStarted jobs, in the order they should start: by turn (migration 0070), then oldest first.
SELECT tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, start_turn
FROM job_instances INDEXED BY job_instances_queued_in_turn
WHERE status = 'NotStarted'
ORDER BY start_turn, create_time_ms
LIMIT :limit;

-- name: startable_within_cap
-- The NotStarted jobs that the per-tenant cap lets start now (of every tenant):
-- each tenant's oldest, as many as it has places free, in the order they should start.
SELECT tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, start_turn
FROM (
    SELECT queued.*,
        row_number() OVER (
            PARTITION BY queued.tenant_id ORDER BY queued.start_turn, queued.create_time_ms, queued.job_instance_id
        ) AS place
    FROM job_instances AS queued INDEXED BY job_instances_queued_by_tenant
    WHERE queued.status = 'NotStarted'
) AS waiting
WHERE waiting.place + (
        SELECT count(*) FROM job_instances AS running INDEXED BY job_instances_running_by_tenant
        WHERE running.tenant_id = waiting.tenant_id AND running.status = 'InProgress'
    ) <= :max_running
ORDER BY waiting.start_turn, waiting.create_time_ms
LIMIT :limit;

-- name: startable_of_tenant
-- As startable_within_cap, for one tenant: its oldest NotStarted jobs, as many as it has places free.
SELECT tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, start_turn
FROM job_instances INDEXED BY job_instances_queued_by_tenant
WHERE tenant_id = :tenant_id AND status = 'NotStarted'
ORDER BY start_turn, create_time_ms, job_instance_id
LIMIT max(0, min(:limit, :max_running - (
    SELECT count(*) FROM job_instances INDEXED BY job_instances_running_by_tenant
    WHERE tenant_id = :tenant_id AND status = 'InProgress'
)));

-- name: renew_executor_lease
INSERT INTO executor_leases (owner, renewed_ms) VALUES (:owner, :at_ms)
ON CONFLICT (owner) DO UPDATE SET renewed_ms = excluded.renewed_ms;

-- name: cancel_requested_of_owner
SELECT tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id
FROM job_instances
WHERE owner = :owner AND status = 'InProgress' AND cancel_requested = 1;

-- name: fail_expired
-- A lost job past its run deadline ended by its timeout, not by its executor's death.
UPDATE job_instances
SET status = 'Failed',
    end_time_ms = :at_ms,
    error = CASE WHEN run_deadline_ms <= :at_ms THEN :timeout_error ELSE :error END,
    version = version + 1
WHERE status = 'InProgress'
    AND heartbeat_ms < :at_ms - :lease_ms
    AND NOT EXISTS (
        SELECT 1 FROM executor_leases AS lease
        WHERE lease.owner = job_instances.owner AND lease.renewed_ms >= :at_ms - :lease_ms
    )
RETURNING *;

-- name: forget_expired_executor_leases
DELETE FROM executor_leases WHERE renewed_ms < :at_ms - :lease_ms;

-- name: search_jobs
SELECT *
FROM job_instances
WHERE (create_time_ms, job_instance_id, workspace_id, item_type, item_id, job_type, tenant_id)
        < (:after_create_time_ms, :after_job_instance_id, :after_workspace_id,
           :after_item_type, :after_item_id, :after_job_type, :after_tenant_id)
    AND (:tenant_id IS NULL OR tenant_id = :tenant_id)
    AND (:workspace_id IS NULL OR workspace_id = :workspace_id)
    AND (:item_type IS NULL OR item_type = :item_type)
    AND (:item_id IS NULL OR item_id = :item_id)
    AND (:job_type IS NULL OR job_type = :job_type)
    AND (:job_instance_id IS NULL OR job_instance_id = :job_instance_id)
    AND (:created_since_ms IS NULL OR create_time_ms >= :created_since_ms)
    AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)))
ORDER BY create_time_ms DESC, job_instance_id DESC, workspace_id DESC,
    item_type DESC, item_id DESC, job_type DESC, tenant_id DESC
LIMIT :limit;

-- name: count_jobs_by_status
SELECT status, count(*) AS count
FROM job_instances
WHERE (:tenant_id IS NULL OR tenant_id = :tenant_id)
    AND (:workspace_id IS NULL OR workspace_id = :workspace_id)
    AND (:item_type IS NULL OR item_type = :item_type)
    AND (:item_id IS NULL OR item_id = :item_id)
    AND (:job_type IS NULL OR job_type = :job_type)
    AND (:job_instance_id IS NULL OR job_instance_id = :job_instance_id)
    AND (:created_since_ms IS NULL OR create_time_ms >= :created_since_ms)
    AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)))
GROUP BY status;

-- name: transitions_of_job
SELECT seq, status, cancel_requested, at_ms
FROM job_transitions
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id AND item_type = :item_type
    AND item_id = :item_id AND job_type = :job_type AND job_instance_id = :job_instance_id
    AND progress = 0
ORDER BY seq;

-- name: changes_after
SELECT change.seq AS change_seq, job.*
FROM job_transitions AS change
JOIN job_instances AS job
    ON job.tenant_id = change.tenant_id AND job.workspace_id = change.workspace_id
    AND job.item_type = change.item_type AND job.item_id = change.item_id
    AND job.job_type = change.job_type AND job.job_instance_id = change.job_instance_id
WHERE change.seq > :after_seq
ORDER BY change.seq
LIMIT :limit;

-- name: last_change_seq
SELECT coalesce(max(seq), 0) AS seq FROM job_transitions;

-- name: purge_jobs
-- One bounded batch: the `limit` terminal jobs the filter covers that ended longest before `before_ms`,
-- deleted in one short write transaction (SQLite's single writer makes it one pruner at a time); their
-- history and stored credentials go with them (triggers, foreign keys). One row per job deleted.
DELETE FROM job_instances
WHERE (tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id) IN (
    SELECT tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id
    FROM job_instances
    WHERE status IN ('Completed', 'Failed', 'Cancelled')
        AND end_time_ms < :before_ms
        AND (:tenant_id IS NULL OR tenant_id = :tenant_id)
        AND (:workspace_id IS NULL OR workspace_id = :workspace_id)
        AND (:item_type IS NULL OR item_type = :item_type)
        AND (:item_id IS NULL OR item_id = :item_id)
        AND (:job_type IS NULL OR job_type = :job_type)
        AND (:job_instance_id IS NULL OR job_instance_id = :job_instance_id)
        AND (:created_since_ms IS NULL OR create_time_ms >= :created_since_ms)
        AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)))
    ORDER BY end_time_ms
    LIMIT :limit
)
RETURNING 1 AS held, 1 AS purged;

-- name: count_purgeable
SELECT count(*) AS count
FROM job_instances
WHERE status IN ('Completed', 'Failed', 'Cancelled')
    AND end_time_ms < :before_ms
    AND (:tenant_id IS NULL OR tenant_id = :tenant_id)
    AND (:workspace_id IS NULL OR workspace_id = :workspace_id)
    AND (:item_type IS NULL OR item_type = :item_type)
    AND (:item_id IS NULL OR item_id = :item_id)
    AND (:job_type IS NULL OR job_type = :job_type)
    AND (:job_instance_id IS NULL OR job_instance_id = :job_instance_id)
    AND (:created_since_ms IS NULL OR create_time_ms >= :created_since_ms)
    AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)));
-- name: get_credential
SELECT sealed
FROM job_credentials
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id AND item_type = :item_type
    AND item_id = :item_id AND job_type = :job_type AND job_instance_id = :job_instance_id;

-- name: replace_credential
UPDATE job_credentials
SET sealed = :sealed
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id AND item_type = :item_type
    AND item_id = :item_id AND job_type = :job_type AND job_instance_id = :job_instance_id;

-- name: insert_credential
INSERT INTO job_credentials (tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, sealed)
VALUES (:tenant_id, :workspace_id, :item_type, :item_id, :job_type, :job_instance_id, :sealed);

-- name: expire_start_deadlines
-- At most `limit` NotStarted jobs past their start deadline end Failed (one statement of SQLite's one writer: the
-- jobs the subquery finds are the ones it changes).
UPDATE job_instances
SET status = 'Failed',
    end_time_ms = :at_ms,
    error = :error,
    version = version + 1
WHERE (tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id) IN (
        SELECT tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id
        FROM job_instances
        WHERE status = 'NotStarted' AND start_deadline_ms IS NOT NULL AND start_deadline_ms <= :at_ms
        ORDER BY start_deadline_ms
        LIMIT :limit
    )
RETURNING *;

-- name: expire_start_deadline_of_job
UPDATE job_instances
SET status = 'Failed',
    end_time_ms = :at_ms,
    error = :error,
    version = version + 1
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id AND item_type = :item_type
    AND item_id = :item_id AND job_type = :job_type AND job_instance_id = :job_instance_id
    AND status = 'NotStarted' AND start_deadline_ms <= :at_ms
RETURNING *;

-- name: time_out_overdue
-- The safety net of timeouts: at most `limit` running jobs whose run deadline passed before `before_ms` (long
-- enough ago that their executor, if alive, would have ended them) end Failed (one statement of SQLite's one
-- writer: the jobs the subquery finds are the ones it changes).
UPDATE job_instances
SET status = 'Failed',
    end_time_ms = :at_ms,
    error = :error,
    version = version + 1
WHERE (tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id) IN (
        SELECT tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id
        FROM job_instances
        WHERE status = 'InProgress' AND run_deadline_ms IS NOT NULL AND run_deadline_ms < :before_ms
        ORDER BY run_deadline_ms
        LIMIT :limit
    )
RETURNING *;

-- name: fail_lost_job
-- A running job whose executor was found dead; past its run deadline it ended by its timeout.
UPDATE job_instances
SET status = 'Failed',
    end_time_ms = :at_ms,
    error = CASE WHEN run_deadline_ms <= :at_ms THEN :timeout_error ELSE :error END,
    version = version + 1
WHERE tenant_id = :tenant_id AND workspace_id = :workspace_id AND item_type = :item_type
    AND item_id = :item_id AND job_type = :job_type AND job_instance_id = :job_instance_id
    AND status = 'InProgress'
RETURNING *;
