"""The gRPC JobService: job lifecycle, cancellation, store, executor and registry. Knows no HTTP."""
