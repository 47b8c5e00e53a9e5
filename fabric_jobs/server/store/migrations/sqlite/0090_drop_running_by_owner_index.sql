-- job_instances_in_progress_by_owner (owner, WHERE status = 'InProgress') served the renewal of every running job's
-- lease by its owner; since leases are renewed per executor (migration 0002) no query reads it (fail_expired goes
-- through job_instances_by_status_oldest_first, cancel_requested_of_owner through
-- job_instances_cancel_requested_by_owner). SQLite rewrites an index's entry in every UPDATE whose SET list names a
-- column the index or its WHERE reads, changed or not: both statements of a Cancel (the cancel sets status by CASE)
-- and every start and end paid one more index page in the write-ahead log for it. Dropping it gives back about half
-- of what the job history's trigger costs a Cancel (1.1 and 1.5 pages of 7.1 and 9.6 per statement).
DROP INDEX IF EXISTS job_instances_in_progress_by_owner;
