-- The W3C trace context (JSON of traceparent and tracestate) of the Create that queued the job, so that its
-- handler's span links to it wherever and whenever the handler runs. NULL while tracing is off.
ALTER TABLE job_instances ADD COLUMN trace_context TEXT;
