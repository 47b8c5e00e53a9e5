-- Fair tenants. Each job gets, when created, its turn to start among every tenant's queued jobs (start
-- fair queuing): one more than its tenant's last queued job, and never before the earliest queued job of
-- any tenant, so that a tenant with one queued job starts next to the head of another's thousands. Its
-- procrastinate job is deferred with the turn as its priority (negated), which orders the workers' fetches.
ALTER TABLE job_instances ADD COLUMN start_turn BIGINT NOT NULL DEFAULT 0;

CREATE INDEX job_instances_queued_in_turn ON job_instances (start_turn, create_time_ms)
    WHERE status = 'NotStarted';

CREATE INDEX job_instances_queued_by_tenant ON job_instances (tenant_id, start_turn, create_time_ms)
    WHERE status = 'NotStarted';

-- With --max-running-per-tenant, a claim counts the tenant's running jobs through this index.
CREATE INDEX job_instances_running_by_tenant ON job_instances (tenant_id)
    WHERE status = 'InProgress';

-- The claim under a per-tenant cap: NotStarted -> InProgress by one compare-and-set, only while the tenant has
-- fewer than p_max_running jobs running and no older queued job that the cap would let start first. Claims of
-- one tenant take turns on a transaction-level advisory lock (the class 0x4A0B5 with the tenant's hash; two
-- tenants sharing a hash only wait for each other), and the UPDATE, a statement of its own in this volatile
-- function, reads the rows as they are once the lock is held: two claims can never both see a free place.
CREATE FUNCTION fabric_jobs_claim_within_cap(
    p_tenant_id TEXT,
    p_workspace_id TEXT,
    p_item_type TEXT,
    p_item_id TEXT,
    p_job_type TEXT,
    p_job_instance_id TEXT,
    p_at_ms BIGINT,
    p_owner TEXT,
    p_max_running INTEGER
) RETURNS SETOF job_instances
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_turn BIGINT;
    v_created BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(303285, hashtext(p_tenant_id));
    SELECT job.start_turn, job.create_time_ms INTO v_turn, v_created
    FROM job_instances AS job
    WHERE job.tenant_id = p_tenant_id AND job.workspace_id = p_workspace_id AND job.item_type = p_item_type
        AND job.item_id = p_item_id AND job.job_type = p_job_type AND job.job_instance_id = p_job_instance_id
        AND job.status = 'NotStarted';
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY
    UPDATE job_instances AS job
    SET status = 'InProgress',
        start_time_ms = p_at_ms,
        owner = p_owner,
        heartbeat_ms = p_at_ms,
        run_deadline_ms = p_at_ms + job.timeout_ms,
        version = job.version + 1
    WHERE job.tenant_id = p_tenant_id AND job.workspace_id = p_workspace_id AND job.item_type = p_item_type
        AND job.item_id = p_item_id AND job.job_type = p_job_type AND job.job_instance_id = p_job_instance_id
        AND job.status = 'NotStarted'
        AND (job.start_deadline_ms IS NULL OR job.start_deadline_ms > p_at_ms)
        AND (SELECT count(*) FROM (
                SELECT 1 FROM job_instances AS running
                WHERE running.tenant_id = p_tenant_id AND running.status = 'InProgress'
                LIMIT p_max_running) AS places)
            + (SELECT count(*) FROM (
                SELECT 1 FROM job_instances AS older
                WHERE older.tenant_id = p_tenant_id AND older.status = 'NotStarted'
                    AND (older.start_turn, older.create_time_ms, older.job_instance_id)
                        < (v_turn, v_created, p_job_instance_id)
                LIMIT p_max_running) AS ahead)
            < p_max_running
    RETURNING job.*;
END;
$$;
