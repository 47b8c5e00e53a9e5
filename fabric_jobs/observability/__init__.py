"""What the people who run the service see: Prometheus metrics, OpenTelemetry traces, structured log lines.

Used by both the REST bridge and the JobService; it knows neither.
"""
