-- Every inserted or updated job instance is announced on the channel fabric_jobs_changes, its key's
-- six parts joined by '/' as the payload, so that every process sees every change at once
-- (fabric_jobs.server.change_listener), whichever process made it.
CREATE FUNCTION fabric_jobs_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        'fabric_jobs_changes',
        concat_ws('/', NEW.tenant_id, NEW.workspace_id, NEW.item_type, NEW.item_id, NEW.job_type, NEW.job_instance_id)
    );
    RETURN NULL;
END;
$$;

CREATE TRIGGER job_instances_notify_change
AFTER INSERT OR UPDATE ON job_instances
FOR EACH ROW EXECUTE FUNCTION fabric_jobs_notify_change();
