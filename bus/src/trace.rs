//! W3C trace context in NATS headers (`traceparent`, `tracestate`, beside `Nats-Msg-Id`): a command
//! published inside a traced span carries it, and the worker that takes the command continues the same
//! trace. Without a tracer (no `OTEL_EXPORTER_OTLP_ENDPOINT`) nothing is written and nothing is read.

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct Inject<'a>(&'a mut HeaderMap);

impl Injector for Inject<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

struct Extract<'a>(&'a HeaderMap);

impl Extractor for Extract<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

/// Writes the current span's trace context into `headers`.
pub fn inject(headers: &mut HeaderMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut Inject(headers)));
}

/// The trace context a message carries (an empty one when it carries none).
pub fn extract(headers: Option<&HeaderMap>) -> opentelemetry::Context {
    match headers {
        Some(headers) => opentelemetry::global::get_text_map_propagator(|p| p.extract(&Extract(headers))),
        None => opentelemetry::Context::new(),
    }
}
