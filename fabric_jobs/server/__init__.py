"""The gRPC JobService. Knows no HTTP. Four rooms, each importing only the rooms below it:

- `edge`: the gRPC services, request checks, error-to-status mapping, the in-process channel;
- `lifecycle`: the JobManager, the operators' JobAdmin, retention;
- `execution`: how stored jobs reach handlers (in process, or on procrastinate workers);
- `store`: the JobStore over SQLite or PostgreSQL, and the change feed.

`app` starts them, `backend` decides from a database URL what store and execution to use, `settings` and
`model` are the plain values every room shares. The handler API for authors is not here: it is
fabric_jobs.registry and fabric_jobs.cancellation.
"""
