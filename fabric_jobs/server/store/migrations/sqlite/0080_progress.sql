-- Progress: what a running job's handler last reported (ctx.report_progress), kept with the job. Each report
-- replaces the three columns together; progress_time_ms is NULL until the first report. A report is written
-- only while the job is InProgress and bumps `version` (a Watch sees it) without touching the status, so a
-- compare-and-set transition never loses to it.
ALTER TABLE job_instances ADD COLUMN progress_percent REAL;
ALTER TABLE job_instances ADD COLUMN progress_message TEXT;
ALTER TABLE job_instances ADD COLUMN progress_time_ms INTEGER;

-- A progress report is a change the admin change feed tails, but not a step of the job's history: it is recorded
-- as a row with `progress` set, and each report replaces the job's previous one (at most one progress row per
-- job). The new row is inserted first: the row deleted is then never the newest of the history, whose number
-- SQLite would hand out again (migration 0050 says why that matters).
ALTER TABLE job_transitions ADD COLUMN progress INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER job_instances_record_progress AFTER UPDATE OF progress_time_ms ON job_instances
WHEN NEW.progress_time_ms IS NOT NULL AND NEW.progress_time_ms IS NOT OLD.progress_time_ms
BEGIN
    INSERT INTO job_transitions (
        tenant_id, workspace_id, item_type, item_id, job_type, job_instance_id, status, cancel_requested, at_ms,
        progress
    )
    VALUES (
        NEW.tenant_id, NEW.workspace_id, NEW.item_type, NEW.item_id, NEW.job_type, NEW.job_instance_id,
        NEW.status, NEW.cancel_requested, NEW.progress_time_ms, 1
    );
    DELETE FROM job_transitions
    WHERE job_instance_id = NEW.job_instance_id AND tenant_id = NEW.tenant_id
        AND workspace_id = NEW.workspace_id AND item_type = NEW.item_type AND item_id = NEW.item_id
        AND job_type = NEW.job_type
        AND progress = 1 AND seq < (SELECT max(seq) FROM job_transitions);
END;
