//! OpenTelemetry trace export (`tracing.provider: otel`): a span per request on every listener and per proxied
//! request, sent in batches over OTLP/HTTP (protobuf) from a background thread, so a slow or absent collector
//! never holds up a request. A request's W3C `traceparent` makes its span a child of the caller's, and the
//! edge proxy passes its own span on to the upstream the same way.
//!
//! Span attributes are the method, the path (never the query, which can carry codes and tokens), the status,
//! and at the edge the rule and the decision; never headers, cookies or bodies.

use crate::config::Tracing;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;
use tracing_opentelemetry::OpenTelemetrySpanExt;

static ON: AtomicBool = AtomicBool::new(false);
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether spans are exported. Request spans are only made when they are, so that tracing costs nothing
/// when it is off.
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// The `tracing` layer that exports spans, when `config` turns export on. Call once, at start-up.
pub fn layer<S>(
    config: &Tracing,
) -> anyhow::Result<
    Option<tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>>,
>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    // `Config::load` has checked the settings (`Tracing::check`).
    if !config.exports() {
        return Ok(None);
    }
    let otlp = &config.providers.otlp;
    let mut headers = HashMap::new();
    if let Some(auth) = &otlp.authorization_header {
        headers.insert("authorization".to_owned(), auth.expose().to_owned());
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(config.otlp_traces_url()?.as_str())
        .with_timeout(Duration::from_secs(10))
        .with_headers(headers)
        .build()?;
    let mut resource = Resource::builder().with_service_name(config.service_name.clone());
    if !config.deployment_environment.is_empty() {
        resource = resource.with_attribute(opentelemetry::KeyValue::new(
            "deployment.environment.name",
            config.deployment_environment.clone(),
        ));
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            otlp.sampling.sampling_ratio,
        ))))
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("portcullis");
    let _ = PROVIDER.set(provider);
    ON.store(true, Ordering::Relaxed);
    Ok(Some(tracing_opentelemetry::layer().with_tracer(tracer)))
}

/// How long the exit waits for the last spans to reach the collector, on top of draining requests.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Sends the spans still queued and stops the exporter. Blocks for at most [`FLUSH_TIMEOUT`], so a collector that
/// hangs cannot hold the exit past the shutdown budget: call it from a blocking thread as the process ends.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        if let Err(e) = provider.shutdown_with_timeout(FLUSH_TIMEOUT) {
            eprintln!("portcullis: flushing the trace exporter failed: {e}");
        }
    }
}

/// Records how a request ended on its span: the status, and an error status for a 5xx or a failure that was
/// not the client hanging up.
pub fn record_outcome(span: &tracing::Span, status: u16, failed: bool) {
    span.record("http.response.status_code", i64::from(status));
    if failed || status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
}

struct HeaderReader<'a>(&'a http::HeaderMap);

impl Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Makes `span` a child of the caller's trace when the request carries a W3C `traceparent`.
pub fn adopt_parent(span: &tracing::Span, headers: &http::HeaderMap) {
    if headers.contains_key("traceparent") {
        let cx = TraceContextPropagator::new().extract(&HeaderReader(headers));
        let _ = span.set_parent(cx);
    }
}

/// The `traceparent` (and `tracestate`) that continue `span`'s trace at the next hop.
pub fn propagation_headers(span: &tracing::Span) -> Vec<(&'static str, String)> {
    struct Collect(Vec<(&'static str, String)>);
    impl Injector for Collect {
        fn set(&mut self, key: &str, value: String) {
            match key {
                "traceparent" => self.0.push(("traceparent", value)),
                "tracestate" if !value.is_empty() => self.0.push(("tracestate", value)),
                _ => {}
            }
        }
    }
    let mut out = Collect(Vec::new());
    TraceContextPropagator::new().inject_context(&span.context(), &mut out);
    out.0
}
