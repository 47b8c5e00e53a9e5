-- The error column holds the proto3 JSON of fabric_jobs.v1.ErrorDetails. Its field names are the
-- camelCase names written before; only the source changes from "User" to "ERROR_SOURCE_USER" (and so on).
UPDATE job_instances
SET error = json_set(error, '$.source', 'ERROR_SOURCE_' || upper(json_extract(error, '$.source')))
WHERE error IS NOT NULL AND json_extract(error, '$.source') IN ('System', 'User', 'External');
