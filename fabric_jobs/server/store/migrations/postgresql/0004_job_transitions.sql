-- The history of every job instance: one row per change of its status, and one when a cancel of a
-- running job is asked for. A trigger writes it in the transaction of the change itself, whichever
-- statement and whichever process (grpc replica, worker, upkeep) makes the change, so no path can change
-- a job without a trace. `seq` orders the changes (the admin change feed tails it; a reader allows for
-- sequence numbers that commit out of order). A change's time is the job's own time of it where the row
-- has one (created, started, ended), else the database clock.
CREATE TABLE job_transitions (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    workspace_id TEXT COLLATE "C" NOT NULL,
    item_type TEXT COLLATE "C" NOT NULL,
    item_id TEXT COLLATE "C" NOT NULL,
    job_type TEXT COLLATE "C" NOT NULL,
    job_instance_id TEXT COLLATE "C" NOT NULL,
    status TEXT NOT NULL,
    cancel_requested BOOLEAN NOT NULL,
    at_ms BIGINT NOT NULL
);

CREATE INDEX job_transitions_by_key ON job_transitions (
    tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, seq
);

CREATE FUNCTION fabric_jobs_record_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed_at BIGINT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        changed_at := NEW.create_time_ms;
    ELSIF NEW.status IS DISTINCT FROM OLD.status AND NEW.status IN ('Completed', 'Failed', 'Cancelled')
            AND NEW.end_time_ms IS NOT NULL THEN
        changed_at := NEW.end_time_ms;
    ELSIF NEW.status IS DISTINCT FROM OLD.status AND NEW.status = 'InProgress' AND NEW.start_time_ms IS NOT NULL THEN
        changed_at := NEW.start_time_ms;
    ELSE
        changed_at := (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT;
    END IF;
    INSERT INTO job_transitions (
        tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, status, cancel_requested, at_ms
    )
    VALUES (
        NEW.tenant_id, NEW.workspace_id, NEW.item_type, NEW.item_id, NEW.job_type, NEW.job_instance_id,
        NEW.status, NEW.cancel_requested, changed_at
    );
    RETURN NULL;
END;
$$;

CREATE TRIGGER job_instances_record_insert AFTER INSERT ON job_instances
FOR EACH ROW EXECUTE FUNCTION fabric_jobs_record_transition();

CREATE TRIGGER job_instances_record_change AFTER UPDATE ON job_instances
FOR EACH ROW
WHEN (NEW.status IS DISTINCT FROM OLD.status OR (NEW.cancel_requested AND NOT OLD.cancel_requested))
EXECUTE FUNCTION fabric_jobs_record_transition();

-- Jobs created before this migration get the history their times tell.
INSERT INTO job_transitions (
    tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, status, cancel_requested, at_ms
)
SELECT tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, status_then, cancel_then, at_then
FROM (
    SELECT tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id,
        'NotStarted' AS status_then, FALSE AS cancel_then, create_time_ms AS at_then, 1 AS step
    FROM job_instances
    UNION ALL
    SELECT tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id,
        'InProgress', FALSE, start_time_ms, 2
    FROM job_instances WHERE start_time_ms IS NOT NULL
    UNION ALL
    SELECT tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id,
        status, cancel_requested, end_time_ms, 3
    FROM job_instances WHERE status IN ('Completed', 'Failed', 'Cancelled') AND end_time_ms IS NOT NULL
) AS history
ORDER BY at_then, step;

-- Listing across tenants, newest first, in the order of the admin listing. It is on the expression
-- create_time_ms + 0, which the search query sorts by and no other query uses: on plain create_time_ms,
-- PostgreSQL's generic plan of a tenant's listing chose it over job_instances_by_tenant_newest_first
-- (filtering the tenant while walking every tenant's newer jobs).
CREATE INDEX job_instances_newest_first ON job_instances (
    (create_time_ms + 0) DESC,
    job_instance_id DESC,
    workspace_id DESC,
    item_type DESC,
    item_id DESC,
    job_type DESC,
    tenant_id DESC
);
