-- Deadlines, stored with the job at Create so that any process can enforce them: when it must have started
-- (an instant), how long a run may take, and, once it started, when its run must have ended.
ALTER TABLE job_instances ADD COLUMN start_deadline_ms INTEGER;
ALTER TABLE job_instances ADD COLUMN timeout_ms INTEGER;
ALTER TABLE job_instances ADD COLUMN run_deadline_ms INTEGER;

-- The upkeep's sweeps: queued jobs past their start deadline, running jobs past their run deadline.
CREATE INDEX job_instances_not_started_by_start_deadline ON job_instances (status, start_deadline_ms)
    WHERE status = 'NotStarted' AND start_deadline_ms IS NOT NULL;

CREATE INDEX job_instances_in_progress_by_run_deadline ON job_instances (status, run_deadline_ms)
    WHERE status = 'InProgress' AND run_deadline_ms IS NOT NULL;
