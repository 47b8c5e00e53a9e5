CREATE TABLE job_instances (
    tenant_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    item_type TEXT NOT NULL,
    item_id TEXT NOT NULL,
    job_type TEXT NOT NULL,
    job_instance_id TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('NotStarted', 'InProgress', 'Completed', 'Failed', 'Cancelled')),
    invoke_type TEXT NOT NULL,
    creation_payload TEXT NOT NULL,
    create_time_ms INTEGER NOT NULL,
    start_time_ms INTEGER,
    end_time_ms INTEGER,
    error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    owner TEXT,
    heartbeat_ms INTEGER,
    version INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id)
) WITHOUT ROWID;

CREATE INDEX job_instances_by_tenant_newest_first ON job_instances (
    tenant_id,
    create_time_ms DESC,
    job_instance_id DESC,
    workspace_id DESC,
    item_type DESC,
    item_id DESC,
    job_type DESC
);

CREATE INDEX job_instances_by_status_oldest_first ON job_instances (status, create_time_ms);

CREATE INDEX job_instances_in_progress_by_owner ON job_instances (owner)
    WHERE status = 'InProgress';
