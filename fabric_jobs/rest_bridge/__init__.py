"""The Starlette REST bridge: Fabric's Jobs REST contract, translated to JobService gRPC calls."""
