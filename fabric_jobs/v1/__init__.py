"""Generated from proto/fabric_jobs/v1 by scripts/generate_proto.py. Do not edit."""
