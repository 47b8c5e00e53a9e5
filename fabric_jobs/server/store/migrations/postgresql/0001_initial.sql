-- The key columns collate as "C": the order of list() is then the byte order of SQLite, whatever the
-- database's locale, and key comparisons skip the locale's rules.
CREATE TABLE job_instances (
    tenant_id TEXT COLLATE "C" NOT NULL,
    workspace_id TEXT COLLATE "C" NOT NULL,
    item_type TEXT COLLATE "C" NOT NULL,
    item_id TEXT COLLATE "C" NOT NULL,
    job_type TEXT COLLATE "C" NOT NULL,
    job_instance_id TEXT COLLATE "C" NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('NotStarted', 'InProgress', 'Completed', 'Failed', 'Cancelled')),
    invoke_type TEXT NOT NULL,
    creation_payload TEXT NOT NULL,
    create_time_ms BIGINT NOT NULL,
    start_time_ms BIGINT,
    end_time_ms BIGINT,
    error TEXT,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    owner TEXT,
    heartbeat_ms BIGINT,
    version INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id)
);

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

CREATE INDEX job_instances_cancel_requested_by_owner ON job_instances (owner)
    WHERE status = 'InProgress' AND cancel_requested;

CREATE TABLE executor_leases (
    owner TEXT PRIMARY KEY,
    renewed_ms BIGINT NOT NULL
);
