-- Retention: terminal jobs are deleted oldest end first, found through this index (only ended jobs are in it).
CREATE INDEX job_instances_ended_oldest_first ON job_instances (end_time_ms)
    WHERE status IN ('Completed', 'Failed', 'Cancelled');

-- Deleting a job deletes its history, whichever statement deletes it. The newest row of the whole history
-- stays: `seq` is a plain rowid, which SQLite numbers max(seq) + 1, so deleting the newest row would hand
-- its number out again and a change watcher past it would miss the next change. The row left behind is
-- of no job (the change feed joins job_instances) and goes with the next purge.
CREATE TRIGGER job_instances_delete_history AFTER DELETE ON job_instances
FOR EACH ROW
BEGIN
    DELETE FROM job_transitions
    WHERE job_instance_id = OLD.job_instance_id AND tenant_id = OLD.tenant_id
        AND workspace_id = OLD.workspace_id AND item_type = OLD.item_type AND item_id = OLD.item_id
        AND job_type = OLD.job_type
        AND seq < (SELECT max(seq) FROM job_transitions);
END;
