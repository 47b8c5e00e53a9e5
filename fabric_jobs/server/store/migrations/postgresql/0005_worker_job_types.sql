-- The job types (itemType/jobType) each process that runs handlers serves, so that every process can tell when its
-- own registry and another's differ. A process writes its row at start and renews seen_ms while it runs; rows not
-- renewed for a while are ignored, and deleted by the next process that writes.
CREATE TABLE worker_job_types (
    worker TEXT PRIMARY KEY,
    job_types TEXT[] NOT NULL,
    seen_ms BIGINT NOT NULL
);
