//! Liveness and readiness. Ready means JetStream answers and holds the command stream, because without
//! it no webhook can be accepted. Readiness answers only ready or not; why not goes to the log, since
//! NATS error text is no business of an unauthenticated caller.

use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};

use crate::{AppState, error};

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.bus.ready().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Err(e) => {
            tracing::warn!(error = %error::chain(&e), "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "not ready"})))
        }
    }
}

/// `GET /metrics`: the ingress's counters as Prometheus text (webhooks received, verified and refused by
/// reason; commands published). Open like `/healthz`: it holds counts, never a tenant or a secret.
pub async fn metrics() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], landlord_worker::telemetry::render())
}
