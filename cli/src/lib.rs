//! What every Landlord binary shares: logging set-up and the shutdown signal.

use tokio_util::sync::CancellationToken;

pub mod otel;

use tracing_subscriber::{Layer as _, layer::SubscriberExt as _, util::SubscriberInitExt as _};

fn filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_env("LANDLORD_LOG")
        .unwrap_or_else(|_| "info,sqlx=warn,sea_orm_migration=warn,async_nats=warn,tower_http=warn".into())
}

/// Logs to stderr, filtered by `LANDLORD_LOG` (`info` by default, libraries quieter). `LANDLORD_LOG_FORMAT=json`
/// gives one JSON object per line for log collectors.
pub fn init_tracing() {
    let builder = tracing_subscriber::fmt().with_env_filter(filter()).with_writer(std::io::stderr);
    if std::env::var("LANDLORD_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// [`init_tracing`] for a long-running process named `service`, with traces exported over OTLP when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set (see [`otel`]). Keep the guard until the process ends: dropping it
/// flushes the last spans.
pub fn init_tracing_for(service: &'static str) -> anyhow::Result<otel::Traces> {
    let provider = otel::provider(service)?;
    let json = std::env::var("LANDLORD_LOG_FORMAT").is_ok_and(|f| f == "json");
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if json { fmt.json().boxed() } else { fmt.boxed() };
    // The filter applies to the logs; spans for traces come at `info` and above whatever the log level.
    let traces = provider
        .as_ref()
        .map(|p| otel::layer(p).with_filter(tracing_subscriber::EnvFilter::new("info,h2=off,hyper=off,reqwest=off")));
    tracing_subscriber::registry().with(fmt.with_filter(filter())).with(traces).init();
    Ok(otel::guard(provider))
}

/// Returns a token cancelled on the first SIGTERM or ctrl-c (stop taking work, let in-flight steps
/// finish); a second signal exits at once.
pub fn shutdown_on_signal() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
        for first in [true, false] {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if first {
                tracing::info!("stopping: finishing in-flight work (signal again to exit now)");
                token.cancel();
            }
        }
        std::process::exit(130);
    });
    shutdown
}
