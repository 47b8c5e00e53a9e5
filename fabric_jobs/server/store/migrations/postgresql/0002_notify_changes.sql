-- Every change of a job instance is announced on the channel fabric_jobs_changes, its key's six parts
-- joined by '/' as the payload, so that every process sees every change at once
-- (fabric_jobs.server.change_listener), whichever process made it. The store announces right after the
-- change has committed, in a transaction of its own that does not wait for the disk: a commit that
-- sends a NOTIFY holds a cluster-wide lock until it is flushed, and the change's own commit (which must
-- be durable) would otherwise queue every other writer behind its flush.
CREATE FUNCTION fabric_jobs_announce_changes(keys text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    changed text;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    FOREACH changed IN ARRAY keys LOOP
        PERFORM pg_notify('fabric_jobs_changes', changed);
    END LOOP;
END;
$$;
