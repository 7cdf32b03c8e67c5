//! Traces for the long-running processes: with `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), every `tracing` span is also an OpenTelemetry span, exported over
//! OTLP/HTTP (protobuf) in batches, with W3C trace context carried in NATS headers between the ingress
//! and the workers. The standard `OTEL_*` variables apply (`OTEL_SERVICE_NAME`, headers, timeouts).
//! Without an endpoint nothing is set up and nothing is exported.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};

/// Flushes the spans not yet exported when the process ends.
#[derive(Debug)]
pub struct Traces {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Traces {
    fn drop(&mut self) {
        // On a thread of its own: the exporter's blocking HTTP client must not be dropped on the runtime.
        if let Some(provider) = self.provider.take() {
            let flushed = std::thread::spawn(move || provider.shutdown()).join();
            if let Ok(Err(e)) = flushed {
                eprintln!("traces not all exported at exit: {e}");
            }
        }
    }
}

/// Whether an OTLP endpoint is configured.
pub fn configured() -> bool {
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

/// The tracer provider for `service` (unless `OTEL_SERVICE_NAME` names it), when an endpoint is set.
pub fn provider(service: &'static str) -> anyhow::Result<Option<SdkTracerProvider>> {
    if !configured() {
        return Ok(None);
    }
    // Built on a thread of its own: its blocking HTTP client may not be made on the async runtime (the
    // batch exporter sends from its own thread).
    let exporter = std::thread::spawn(|| {
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the trace exporter could not be built"))?
    .map_err(|e| anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT: cannot export traces there: {e}"))?;
    let name = std::env::var("OTEL_SERVICE_NAME").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| service.to_owned());
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(name).build())
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    Ok(Some(provider))
}

/// The `tracing` layer that turns spans into OpenTelemetry spans of `provider`.
pub fn layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("landlord"))
}

pub fn guard(provider: Option<SdkTracerProvider>) -> Traces {
    Traces { provider }
}
