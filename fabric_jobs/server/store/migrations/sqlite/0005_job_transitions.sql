-- The history of every job instance: one row per change of its status, and one when a cancel of a
-- running job is asked for. Triggers write it in the transaction of the change itself, whichever
-- statement makes the change, so no path can change a job without a trace. `seq` orders every change
-- of every job (the admin change feed tails it; rows are never deleted, so a plain rowid key grows like
-- AUTOINCREMENT's without its extra write per row). A change's time is the job's own time of it where the
-- row has one (created, started, ended), else the database clock.
CREATE TABLE job_transitions (
    seq INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    item_type TEXT NOT NULL,
    item_id TEXT NOT NULL,
    job_type TEXT NOT NULL,
    job_instance_id TEXT NOT NULL,
    status TEXT NOT NULL,
    cancel_requested INTEGER NOT NULL,
    at_ms INTEGER NOT NULL
);

-- A job's history is found by its instance id (a UUID, all but unique alone; the other parts of the key are
-- compared in the rows): one column to index instead of the six of the key, on every change.
CREATE INDEX job_transitions_by_key ON job_transitions (job_instance_id, seq);

CREATE TRIGGER job_instances_record_insert AFTER INSERT ON job_instances
BEGIN
    INSERT INTO job_transitions (
        tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, status, cancel_requested, at_ms
    )
    VALUES (
        NEW.tenant_id, NEW.workspace_id, NEW.item_type, NEW.item_id, NEW.job_type, NEW.job_instance_id,
        NEW.status, NEW.cancel_requested, NEW.create_time_ms
    );
END;

CREATE TRIGGER job_instances_record_change AFTER UPDATE ON job_instances
WHEN NEW.status IS NOT OLD.status OR (NEW.cancel_requested = 1 AND OLD.cancel_requested = 0)
BEGIN
    INSERT INTO job_transitions (
        tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, status, cancel_requested, at_ms
    )
    VALUES (
        NEW.tenant_id, NEW.workspace_id, NEW.item_type, NEW.item_id, NEW.job_type, NEW.job_instance_id,
        NEW.status, NEW.cancel_requested,
        CASE
            WHEN NEW.status IS NOT OLD.status AND NEW.status IN ('Completed', 'Failed', 'Cancelled')
                AND NEW.end_time_ms IS NOT NULL THEN NEW.end_time_ms
            WHEN NEW.status IS NOT OLD.status AND NEW.status = 'InProgress'
                AND NEW.start_time_ms IS NOT NULL THEN NEW.start_time_ms
            ELSE CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)
        END
    );
END;

-- Jobs created before this migration get the history their times tell.
INSERT INTO job_transitions (
    tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, status, cancel_requested, at_ms
)
SELECT tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, status_then, cancel_then, at_then
FROM (
    SELECT tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id,
        'NotStarted' AS status_then, 0 AS cancel_then, create_time_ms AS at_then, 1 AS step
    FROM job_instances
    UNION ALL
    SELECT tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id,
        'InProgress', 0, start_time_ms, 2
    FROM job_instances WHERE start_time_ms IS NOT NULL
    UNION ALL
    SELECT tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id,
        status, cancel_requested, end_time_ms, 3
    FROM job_instances WHERE status IN ('Completed', 'Failed', 'Cancelled') AND end_time_ms IS NOT NULL
) AS history
ORDER BY at_then, step;

-- Listing across tenants, newest first, in the order of the admin listing.
CREATE INDEX job_instances_newest_first ON job_instances (
    create_time_ms DESC,
    job_instance_id DESC,
    workspace_id DESC,
    item_type DESC,
    item_id DESC,
    job_type DESC,
    tenant_id DESC
);
