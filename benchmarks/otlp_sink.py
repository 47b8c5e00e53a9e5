"""An OTLP/gRPC trace receiver that accepts and drops every span: the collector a tracing-on benchmark exports to.

python -m benchmarks.otlp_sink   # prints "otlp sink on 127.0.0.1:PORT", serves until SIGTERM
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class _Sink(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans = 0

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.spans += sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)
        return trace_service_pb2.ExportTraceServiceResponse()


async def main() -> None:
    server = grpc.aio.server()
    sink = _Sink()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"otlp sink on 127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    print(f"otlp sink received {sink.spans} spans", flush=True)
    await server.stop(None)


if __name__ == "__main__":
    asyncio.run(main())
