//! Logging: human-readable on a terminal, JSON lines (for Loki) otherwise, on stderr.
//!
//! The level comes from `CANARY_LOG` (e.g. `info`, `canary_engine=debug`), default `warn`.
//!
//! Traces: built with the `otlp` feature (as the container image is), spans are exported over
//! OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (e.g.
//! `http://otel-collector.observability:4318`); `OTEL_SERVICE_NAME` names the service
//! (default `canary-engine`). The other standard `OTEL_*` variables apply.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

type Boxed = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;

/// Install the global subscriber once; later calls do nothing.
pub fn init() {
    let filter = EnvFilter::try_from_env("CANARY_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs: Boxed = if std::io::stderr().is_terminal() {
        Box::new(fmt.with_filter(filter))
    } else {
        Box::new(fmt.json().with_filter(filter))
    };
    #[cfg(feature = "otlp")]
    let layers: Vec<Boxed> = std::iter::once(logs).chain(otlp::layer()).collect();
    #[cfg(not(feature = "otlp"))]
    let layers = vec![logs];
    let _ = tracing_subscriber::registry().with(layers).try_init();
}

/// Send the spans still buffered (call before exiting).
pub fn shutdown() {
    #[cfg(feature = "otlp")]
    otlp::shutdown();
}

#[cfg(feature = "otlp")]
mod otlp {
    use std::sync::OnceLock;

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::Layer;

    use super::Boxed;

    static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

    /// The OTLP layer, when an endpoint is configured.
    pub(super) fn layer() -> Option<Boxed> {
        let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
            .ok()
            .filter(|e| !e.is_empty())?;
        let exporter = match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
        {
            Ok(e) => e,
            Err(e) => {
                eprintln!("warning: no trace export to {endpoint}: {e}");
                return None;
            }
        };
        let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "canary-engine".into());
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(service)
                    .build(),
            )
            .build();
        let tracer = provider.tracer("canary-engine");
        let _ = PROVIDER.set(provider);
        // The engine's own spans: requests, judgements, queries, promotions.
        let filter = tracing_subscriber::filter::Targets::new()
            .with_target("canary_engine", tracing::Level::INFO);
        Some(Box::new(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(filter),
        ))
    }

    pub(super) fn shutdown() {
        if let Some(p) = PROVIDER.get() {
            let _ = p.shutdown();
        }
    }
}
