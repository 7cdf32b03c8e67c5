//! What every Landlord binary shares: logging set-up and the shutdown signal.

use tokio_util::sync::CancellationToken;

/// Logs to stderr, filtered by `LANDLORD_LOG` (`info` by default, libraries quieter). `LANDLORD_LOG_FORMAT=json`
/// gives one JSON object per line for log collectors.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LANDLORD_LOG")
        .unwrap_or_else(|_| "info,sqlx=warn,sea_orm_migration=warn,async_nats=warn,tower_http=warn".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("LANDLORD_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
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
