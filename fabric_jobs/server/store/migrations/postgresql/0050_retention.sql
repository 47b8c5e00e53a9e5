-- Retention: terminal jobs are deleted oldest end first, found through this index (only ended jobs are in it).
CREATE INDEX job_instances_ended_oldest_first ON job_instances (end_time_ms)
    WHERE status IN ('Completed', 'Failed', 'Cancelled');

-- Deleting a job deletes its history, whichever statement and process deletes it.
CREATE FUNCTION fabric_jobs_delete_history() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM job_transitions
    WHERE tenant_id = OLD.tenant_id AND workspace_id = OLD.workspace_id AND item_type = OLD.item_type
        AND item_id = OLD.item_id AND job_type = OLD.job_type AND job_instance_id = OLD.job_instance_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER job_instances_delete_history AFTER DELETE ON job_instances
FOR EACH ROW EXECUTE FUNCTION fabric_jobs_delete_history();
