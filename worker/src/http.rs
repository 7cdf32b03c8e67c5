//! The worker's own small HTTP port (`LANDLORD_WORKER_HTTP_ADDR`), for orchestrators and Prometheus:
//! `/healthz` answers while the process runs, `/readyz` only while it consumes commands and reaches
//! JetStream and the control plane, `/metrics` is the registry as Prometheus text. Nothing else, and
//! nothing that changes anything.

use std::{
    net::SocketAddr,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use landlord_bus::Bus;
use tokio_util::sync::CancellationToken;

use crate::{store::Store, telemetry};

/// What `/readyz` looks at, filled in as the worker starts.
#[derive(Debug, Default)]
pub struct Readiness {
    pub bus: OnceLock<Bus>,
    pub store: OnceLock<Store>,
    /// Set once the worker consumes commands, cleared when it stops.
    pub consuming: AtomicBool,
}

/// Binds `addr` and serves until `shutdown`. Bound before anything else starts, so a port that is taken
/// stops the worker at once with the reason.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("LANDLORD_WORKER_HTTP_ADDR {addr}: cannot listen there: {e}"))
}

pub async fn serve(listener: tokio::net::TcpListener, ready: Arc<Readiness>, shutdown: CancellationToken) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(ready);
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await {
        tracing::warn!(error = %e, "the worker's HTTP port stopped");
    }
}

async fn readyz(State(ready): State<Arc<Readiness>>) -> impl IntoResponse {
    let (Some(bus), Some(store), true) = (ready.bus.get(), ready.store.get(), ready.consuming.load(Ordering::Relaxed))
    else {
        return (StatusCode::SERVICE_UNAVAILABLE, "not consuming commands yet".to_owned());
    };
    // The port is open to whoever can reach it: the answer names what is not ready, the log says why (a
    // driver's error can name hosts, databases and logins).
    if let Err(e) = bus.ready().await {
        tracing::warn!(error = %e, "not ready: JetStream");
        return (StatusCode::SERVICE_UNAVAILABLE, "JetStream is not reachable".to_owned());
    }
    match tokio::time::timeout(std::time::Duration::from_secs(2), store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: control plane");
            return (StatusCode::SERVICE_UNAVAILABLE, "the control plane is not reachable".to_owned());
        }
        Err(_) => return (StatusCode::SERVICE_UNAVAILABLE, "the control plane gave no answer within 2 s".to_owned()),
    }
    (StatusCode::OK, "ready".to_owned())
}

async fn metrics() -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], telemetry::render())
}
