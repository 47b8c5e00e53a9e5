"""OpenTelemetry traces: off unless OTEL_TRACES_EXPORTER names an exporter; then the SDK's own tracer
provider, batch span processor and exporters, configured by the standard OTEL_* variables.

While tracing is off, `enabled()` is False and instrumented code skips its span work altogether.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, SpanKind

TRACER_NAME = "fabric_jobs"
DEFAULT_SERVICE_NAME = "fabric-jobs"
_EXPORTER_GROUP = "opentelemetry_traces_exporter"
_OTLP_BY_PROTOCOL = {"grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http"}

_provider: trace.TracerProvider | None = None


class TracingConfigError(ValueError):
    """OTEL_* variables that name what cannot be used: the message names the variable."""


def enabled() -> bool:
    return _provider is not None


def provider() -> trace.TracerProvider | None:
    """The tracer provider spans go to; None while tracing is off."""
    return _provider


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME, tracer_provider=_provider)


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The span exporters' entry-point names that OTEL_TRACES_EXPORTER asks for, `otlp` resolved by protocol as
    the SDK's own configurator does."""
    names = [name.strip() for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip()]
    if "none" in names:
        return []
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    resolved = []
    for name in names:
        if name == "otlp":
            if protocol not in _OTLP_BY_PROTOCOL:
                raise TracingConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL must be grpc or http/protobuf, not {protocol!r}")
            name = _OTLP_BY_PROTOCOL[protocol]
        resolved.append(name)
    return resolved


def _load_exporter(name: str) -> Any:
    found = entry_points(group=_EXPORTER_GROUP, name=name)
    if not found:
        hint = " (install the OTLP exporter: pip install 'fabric-jobs[otlp]')" if name.startswith("otlp") else ""
        raise TracingConfigError(f"OTEL_TRACES_EXPORTER: no span exporter named {name!r} is installed{hint}")
    return next(iter(found)).load()()


def configure_from_environment(environ: Mapping[str, str] | None = None) -> bool:
    """Install the SDK's tracer provider if OTEL_TRACES_EXPORTER asks for exporters (and OTEL_SDK_DISABLED is not
    true); True if tracing is on. Called once, by the command line."""
    environ = os.environ if environ is None else environ
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    names = exporter_names(environ)
    if not names:
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporters = [_load_exporter(name) for name in names]
    defaults = {} if environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: DEFAULT_SERVICE_NAME}
    sdk_provider = TracerProvider(resource=Resource.create(defaults))
    for exporter in exporters:
        sdk_provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(sdk_provider)
    use_provider(sdk_provider)
    return True


def use_provider(tracer_provider: trace.TracerProvider | None) -> None:
    """Trace to `tracer_provider` from now on (None: tracing off). Takes effect for bridges created after it."""
    global _provider
    _provider = tracer_provider


def shutdown() -> None:
    """Export the spans still buffered, and stop tracing."""
    stop = getattr(_provider, "shutdown", None)
    if stop is not None:
        stop()
    use_provider(None)


def inject_metadata(metadata: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """`metadata` plus the current trace context (W3C traceparent, tracestate), for a gRPC call."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return (*metadata, *carrier.items())


def extract_metadata(metadata: Iterable[tuple[str, Any]]) -> otel_context.Context:
    """The trace context a caller sent in gRPC metadata."""
    carrier = {key: value for key, value in metadata if isinstance(value, str)}
    return propagate.extract(carrier)


def current_context_text() -> str | None:
    """The current trace context as JSON text to keep with a job instance; None when there is none."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return json.dumps(carrier, separators=(",", ":"), sort_keys=True) if carrier else None


def links_from_text(text: str | None) -> list[Link]:
    """A link to the span whose context `current_context_text` kept; none for no or unreadable text."""
    if not text:
        return []
    try:
        carrier = json.loads(text)
    except ValueError:
        return []
    if not isinstance(carrier, dict):
        return []
    span_context = trace.get_current_span(propagate.extract({str(k): str(v) for k, v in carrier.items()}))
    context = span_context.get_span_context()
    return [Link(context)] if context.is_valid else []


SERVER = SpanKind.SERVER
CONSUMER = SpanKind.CONSUMER
