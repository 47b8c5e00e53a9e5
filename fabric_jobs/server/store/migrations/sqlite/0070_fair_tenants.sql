-- Fair tenants. Each job gets, when created, its turn to start among every tenant's queued jobs (start
-- fair queuing): one more than its tenant's last queued job, and never before the earliest queued job of
-- any tenant, so that a tenant with one queued job starts next to the head of another's thousands.
ALTER TABLE job_instances ADD COLUMN start_turn INTEGER NOT NULL DEFAULT 0;

CREATE INDEX job_instances_queued_in_turn ON job_instances (start_turn, create_time_ms)
    WHERE status = 'NotStarted';

CREATE INDEX job_instances_queued_by_tenant ON job_instances (tenant_id, start_turn, create_time_ms)
    WHERE status = 'NotStarted';

-- With --max-running-per-tenant, a claim counts the tenant's running jobs through this index.
CREATE INDEX job_instances_running_by_tenant ON job_instances (tenant_id)
    WHERE status = 'InProgress';
