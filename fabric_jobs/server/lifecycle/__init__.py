"""The job lifecycle between the edge and execution: the JobManager (create, get, cancel, wait, watch), the
operators' JobAdmin and retention. Plain values in and out; no protobuf."""
