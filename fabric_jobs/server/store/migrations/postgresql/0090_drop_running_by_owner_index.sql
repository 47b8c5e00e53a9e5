-- job_instances_in_progress_by_owner served the renewal of every running job's lease by its owner; leases are
-- renewed per executor, and fail_expired finds running jobs through job_instances_by_status_oldest_first. An
-- index no query needs is one more entry written by every start, cancel and end of a job (no update of status is
-- HOT). As in SQLite's migration 0090.
DROP INDEX IF EXISTS job_instances_in_progress_by_owner;
