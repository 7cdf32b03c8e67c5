//! `landlord-ingress`: the thin HTTP edge. It verifies Stripe webhooks (and, later, admin requests),
//! turns them into commands and answers only once JetStream has stored them. It holds no tenant state.

pub mod config;
mod error;
mod routes;
pub mod stripe;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{get, post},
};
use landlord_bus::{Bus, StreamSettings};
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

pub use config::IngressConfig;
pub use error::ApiError;
pub use routes::webhook::accept_stripe_event;

/// Everything handlers share, built once in [`run`].
#[derive(Debug, Clone)]
pub struct AppState {
    pub bus: Bus,
    pub stripe_secrets: Arc<[SecretString]>,
    pub stripe_tolerance: Duration,
    /// Bearer tokens accepted on the admin API.
    pub admin_tokens: Arc<[SecretString]>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/webhooks/stripe", post(routes::webhook::stripe_webhook))
        .route("/v1/tenants/{id}/provision", post(routes::admin::retry))
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .layer(DefaultBodyLimit::max(routes::webhook::MAX_BODY))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves the ingress on `listener` until `shutdown` is cancelled. Streams are created in the background
/// so the ingress starts (and reports not-ready) while NATS is still coming up.
pub async fn run(cfg: IngressConfig, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let bus = Bus::connect(&cfg.nats_url).await?;
    let settings =
        StreamSettings { duplicate_window: cfg.duplicate_window, replicas: cfg.replicas, ..StreamSettings::default() };
    tokio::spawn(ensure_streams_until_done(bus.clone(), settings, shutdown.clone()));
    let state = AppState {
        bus,
        stripe_secrets: cfg.stripe_webhook_secrets.into(),
        stripe_tolerance: cfg.stripe_tolerance,
        admin_tokens: cfg.admin_tokens.into(),
    };
    tracing::info!(addr = %listener.local_addr()?, "ingress listening");
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
    Ok(())
}

async fn ensure_streams_until_done(bus: Bus, settings: StreamSettings, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        match bus.ensure_streams(&settings).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "JetStream streams not ready yet; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
