"""The gRPC edge: the JobService and AdminService (protobuf in, protobuf out), request checks, the interceptor
that maps errors to statuses, and the in-process channel. It calls the lifecycle and knows no database."""
