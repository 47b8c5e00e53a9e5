"""fabric-jobs: the Jobs API of Microsoft Fabric workloads, as a gRPC JobService and a REST bridge."""

__version__ = "0.1.0"
