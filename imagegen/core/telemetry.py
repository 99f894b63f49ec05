"""Tracing, metrics and job-tagged logs with OpenTelemetry.

One trace per job. Its root span, `job`, stands for the orchestration instance; under it,
a span per activity (`activity generate_images`, ...), per GPU call (`gpu_batch`), per
safety check (`safety.check_image`, `safety.check_texts`) and per storage call (the Azure
SDK's own spans, enabled through `azure-core`'s tracing). Spans carry the job id, batch
id, variant count, batch size, image size and steps.

The orchestrator is replay-safe and emits nothing, so the job's trace is tied together
by its id: the trace id and the job span's id are hashes of the job id. Every activity
starts its span under that (not yet written) job span, and `write_manifest`, which knows
when the job was created, writes the job span itself at the end with the same ids.

Metrics: `imagegen.images` (images generated), `imagegen.image.seconds` (seconds per
image) and `imagegen.gpu.memory` (peak GPU memory of a batch, bytes; on CUDA only).

Where it all goes:
- Azure (`APPLICATIONINSIGHTS_CONNECTION_STRING` set): Application Insights through the
  Azure Monitor OpenTelemetry distro, authenticated as the app's managed identity (the
  client id in `APPLICATIONINSIGHTS_AUTHENTICATION_STRING`, `Authorization=AAD;ClientId=...`);
- locally: JSON lines, one span, metric point or log record per line, in
  `IMAGEGEN_TELEMETRY_FILE` (default `.devhost/telemetry.jsonl`, devhost's state folder);
- and an OTLP collector too when the standard `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

Log records made while an activity runs carry `job_id` (and the span's trace id), in
every destination.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags

from imagegen.core.settings import Settings

log = logging.getLogger(__name__)

SERVICE_NAME = "durable-diffusion"
DEFAULT_FILE = Path(".devhost") / "telemetry.jsonl"

_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("imagegen_job_id", default=None)
_fixed_ids: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar("imagegen_fixed_ids", default=None)
_configure_lock = threading.Lock()
_configured = False
_instruments: dict[str, Any] = {}


# --- the job's ids ----------------------------------------------------------------------------


def job_trace_ids(job_id: str) -> tuple[int, int]:
    """The job's trace id and its root span's id: hashes of the job id, so that every
    activity of the job, in any process, finds the same trace without being told."""
    digest = hashlib.sha256(f"imagegen-job:{job_id}".encode()).digest()
    return int.from_bytes(digest[:16], "big") or 1, int.from_bytes(digest[16:24], "big") or 1


class JobIdGenerator(IdGenerator):
    """Random ids, except for the job span, whose ids `job_span` fixes."""

    def __init__(self, fallback: IdGenerator | None = None):
        self.fallback = fallback or RandomIdGenerator()

    def generate_span_id(self) -> int:
        fixed = _fixed_ids.get()
        return fixed[1] if fixed else self.fallback.generate_span_id()

    def generate_trace_id(self) -> int:
        fixed = _fixed_ids.get()
        return fixed[0] if fixed else self.fallback.generate_trace_id()


def job_context(job_id: str) -> otel_context.Context:
    """A context whose parent is the job's span, for spans made inside one of its activities."""
    trace_id, span_id = job_trace_ids(job_id)
    parent = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return trace.set_span_in_context(NonRecordingSpan(parent))


def current_job_id() -> str | None:
    return _job_id.get()


# --- local exporters: JSON lines ---------------------------------------------------------------


class JsonLinesFile:
    """Appends one JSON object per line; shared by the span, metric and log exporters.

    Each write is one `write(2)` to a file opened for appending, so the lines of the host
    process and of its checker process (`imagegen.service.output_checks`) never interleave."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        if not records:
            return
        data = "".join(json.dumps(record, default=str) + "\n" for record in records).encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)


def span_record(span: ReadableSpan) -> dict[str, Any]:
    parent = span.parent
    assert span.start_time is not None and span.end_time is not None  # the span has ended
    return {
        "record": "span", "name": span.name,
        "trace_id": f"{span.context.trace_id:032x}", "span_id": f"{span.context.span_id:016x}",
        "parent_id": f"{parent.span_id:016x}" if parent else None,
        "start": span.start_time / 1e9, "end": span.end_time / 1e9,
        "duration_s": (span.end_time - span.start_time) / 1e9,
        "status": span.status.status_code.name, "attributes": dict(span.attributes or {}),
    }


class JsonLinesSpanExporter(SpanExporter):
    def __init__(self, file: JsonLinesFile):
        self.file = file

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.file.write([span_record(span) for span in spans])
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class JsonLinesMetricExporter(MetricExporter):
    def __init__(self, file: JsonLinesFile):
        super().__init__()
        self.file = file

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        records: list[dict[str, Any]] = []
        for resource_metrics in metrics_data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    for point in metric.data.data_points:
                        value = {key: getattr(point, key) for key in ("value", "sum", "count", "min", "max")
                                 if hasattr(point, key)}
                        records.append({"record": "metric", "name": metric.name, "unit": metric.unit,
                                        "attributes": dict(point.attributes or {}), **value})
        self.file.write(records)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


class JsonLinesLogHandler(logging.Handler):
    """The app's log records (INFO and up), with their job id and trace id."""

    def __init__(self, file: JsonLinesFile):
        super().__init__(logging.INFO)
        self.file = file

    def emit(self, record: logging.LogRecord) -> None:
        try:
            span = trace.get_current_span().get_span_context()
            self.file.write([{
                "record": "log", "time": record.created, "level": record.levelname, "logger": record.name,
                "message": record.getMessage(), "job_id": getattr(record, "job_id", None),
                "trace_id": f"{span.trace_id:032x}" if span.is_valid else None,
            }])
        except Exception:  # noqa: BLE001 - logging must never break the app
            self.handleError(record)


# --- setting it up, once per process -----------------------------------------------------------


def telemetry_file(settings: Settings) -> Path:
    return Path(settings.telemetry_file) if settings.telemetry_file else DEFAULT_FILE


def managed_identity_client_id(authentication: str | None) -> str | None:
    """The client id in `Authorization=AAD;ClientId=<id>` (None for the system identity)."""
    parts = dict(part.split("=", 1) for part in (authentication or "").split(";") if "=" in part)
    return parts.get("ClientId") or None


def configure(settings: Settings) -> None:
    """Send spans, metrics and logs where the settings say; the first call wins."""
    global _configured
    if _configured:
        return
    with _configure_lock:
        if _configured:
            return
        if settings.appinsights_connection_string:
            _configure_azure_monitor(settings)
        else:
            _configure_local(settings)
        _install_job_id_on_log_records()
        _enable_azure_sdk_spans()
        meter = metrics.get_meter("imagegen")
        _instruments["images"] = meter.create_counter("imagegen.images", unit="{image}",
                                                      description="Images generated")
        _instruments["seconds"] = meter.create_histogram("imagegen.image.seconds", unit="s",
                                                         description="Generation seconds per image")
        _instruments["gpu_memory"] = meter.create_histogram("imagegen.gpu.memory", unit="By",
                                                            description="Peak GPU memory of a batch")
        _configured = True


def _configure_azure_monitor(settings: Settings) -> None:
    from azure.identity import ManagedIdentityCredential
    from azure.monitor.opentelemetry import configure_azure_monitor

    client_id = managed_identity_client_id(settings.appinsights_authentication_string)
    configure_azure_monitor(
        connection_string=settings.appinsights_connection_string,
        credential=ManagedIdentityCredential(client_id=client_id),
        resource=Resource.create({"service.name": SERVICE_NAME}),
        logger_name="imagegen",
    )
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):  # tracers made from here on fix the job span's ids
        # opentelemetry's attribute is inferred from its default (RandomIdGenerator); any IdGenerator is taken.
        provider.id_generator = JobIdGenerator(provider.id_generator)  # type: ignore[assignment]


def _configure_local(settings: Settings) -> None:
    file = JsonLinesFile(telemetry_file(settings))
    resource = Resource.create({"service.name": SERVICE_NAME})
    tracer_provider = TracerProvider(resource=resource, id_generator=JobIdGenerator())
    # One line per span as it ends: cheap next to an image, and nothing is lost on a crash.
    tracer_provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(file)))
    readers = [PeriodicExportingMetricReader(JsonLinesMetricExporter(file))]
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
    logging.getLogger("imagegen").addHandler(JsonLinesLogHandler(file))
    logging.getLogger("imagegen").setLevel(logging.INFO)


def _install_job_id_on_log_records() -> None:
    previous = logging.getLogRecordFactory()

    def record_with_job_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.job_id = _job_id.get()
        return record

    logging.setLogRecordFactory(record_with_job_id)


def _enable_azure_sdk_spans() -> None:
    # The Azure SDK clients (Blob Storage, Content Safety) trace each call natively with
    # OpenTelemetry once this is on: the storage and Content Safety spans come from there.
    from azure.core.settings import settings as azure_settings

    azure_settings.tracing_enabled = True


def tracer() -> trace.Tracer:
    return trace.get_tracer("imagegen")


# --- what the app calls ------------------------------------------------------------------------


def request_attributes(request: Mapping[str, Any]) -> dict[str, Any]:
    """Job id, batch id and size, image size and steps from an activity's request."""
    attributes: dict[str, Any] = {}
    job_id = request.get("job_id")
    ref = request.get("image")
    if not job_id and isinstance(ref, str) and ref.count("/") >= 2:
        job_id = ref.split("/")[1]  # quarantine/{job_id}/{variant}.{ext}
    if job_id:
        attributes["job.id"] = job_id
    batch = request.get("batch")
    if isinstance(batch, Mapping):
        variants = batch.get("variants") or []
        attributes["batch.id"] = batch.get("id")
        attributes["batch.size"] = len(variants)
        if variants:
            first = variants[0]
            attributes.update({"image.width": first.get("width"), "image.height": first.get("height"),
                               "image.steps": first.get("steps")})
    if "image" in request:  # moderate_image checks a source image (generate_images checks its own)
        attributes["check"] = "input"
    if "texts" in request:
        attributes["texts"] = len(request["texts"])
    if "refs" in request:
        attributes["images"] = len(request["refs"])
    return {key: value for key, value in attributes.items() if value is not None}


@contextmanager
def activity(name: str, request: Mapping[str, Any]) -> Iterator[trace.Span]:
    """The span of one activity run, under its job's span; log records inside carry the job id."""
    attributes = request_attributes(request) if isinstance(request, Mapping) else {}
    job_id = attributes.get("job.id")
    parent = job_context(job_id) if job_id else otel_context.Context()
    token = _job_id.set(job_id)
    try:
        with tracer().start_as_current_span(f"activity {name}", context=parent, attributes=attributes) as span:
            yield span
    finally:
        _job_id.reset(token)


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[trace.Span]:
    """A child span of whatever runs now (a GPU call, a safety check)."""
    clean = {key.replace("_", "."): value for key, value in attributes.items() if value is not None}
    with tracer().start_as_current_span(name, attributes=clean) as current:
        yield current


def carrier() -> dict[str, str]:
    """What work handed to another process needs to join the current span: the W3C trace
    context (`traceparent`) and the job id. See `resumed`."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    job_id = _job_id.get()
    if job_id:
        headers["job_id"] = job_id
    return headers


@contextmanager
def resumed(headers: Mapping[str, str]) -> Iterator[None]:
    """Inside, spans are children of the span `carrier()` was called in, and log records
    carry its job id, in whatever process this runs."""
    token = otel_context.attach(propagate.extract(headers))
    job_token = _job_id.set(headers.get("job_id"))
    try:
        yield
    finally:
        _job_id.reset(job_token)
        otel_context.detach(token)


def job_span(job_id: str, created: datetime, attributes: Mapping[str, Any], error: str | None = None) -> None:
    """Write the job's root span, from when the job was created until now, with the ids its
    activities already used as their parent."""
    token = _fixed_ids.set(job_trace_ids(job_id))
    try:
        root = tracer().start_span("job", context=otel_context.Context(),
                                   start_time=int(created.timestamp() * 1e9),
                                   attributes={"job.id": job_id, **{k: v for k, v in attributes.items() if v is not None}})
    finally:
        _fixed_ids.reset(token)
    if error:
        root.set_status(Status(StatusCode.ERROR, error))
    root.end()


def record_images(count: int, seconds_per_image: float, device: str, gpu_memory_bytes: int | None = None) -> None:
    """Count a GPU call's images and their seconds each; its peak GPU memory when on CUDA."""
    if not _instruments:
        return  # telemetry is not configured in this process (a test, a bench): nothing to count
    attributes = {"device": device}
    _instruments["images"].add(count, attributes)
    for _ in range(count):
        _instruments["seconds"].record(seconds_per_image, attributes)
    if gpu_memory_bytes is not None:
        _instruments["gpu_memory"].record(gpu_memory_bytes, attributes)


def flush() -> None:
    """Export what is buffered now (tests, and before a process ends)."""
    provider = trace.get_tracer_provider()
    if hasattr(provider, "force_flush"):
        provider.force_flush()
    meter_provider = metrics.get_meter_provider()
    if hasattr(meter_provider, "force_flush"):
        meter_provider.force_flush()
