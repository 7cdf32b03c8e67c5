//! Middleware that bounds what one request may cost: a whole-request timeout (body read included, so a
//! client trickling its body gets `408`) and a concurrency limit that answers `503` at once rather than
//! queueing. Both answer with the usual JSON error.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// The webhook's path: its refusals here are counted with the handler's own (received, rejected by reason),
/// or an overloaded ingress would look quiet on its dashboard exactly when it refuses Stripe.
const WEBHOOK_PATH: &str = "/webhooks/stripe";

/// A Stripe webhook delivery (another method on its path is a 405, not a webhook).
fn is_webhook(request: &Request) -> bool {
    request.method() == axum::http::Method::POST && request.uri().path() == WEBHOOK_PATH
}

/// Counts a webhook refused before its handler answered.
fn count_refused_webhook(error: &ApiError) {
    metrics::counter!(landlord_worker::telemetry::WEBHOOKS_REJECTED, "reason" => error.code()).increment(1);
}

/// Answers `408` when the request is not read and answered within `limit`. A handler cut off here is
/// dropped; a command it had already stored stays stored, and the caller's retry is deduplicated. The
/// outermost of the limits, so it counts every webhook request as received.
pub(crate) async fn time_out(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let webhook = is_webhook(&request);
    if webhook {
        metrics::counter!(landlord_worker::telemetry::WEBHOOKS_RECEIVED).increment(1);
    }
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::info!(limit_secs = limit.as_secs(), "request timed out");
            let error = ApiError::Timeout { limit_secs: limit.as_secs() };
            if webhook {
                count_refused_webhook(&error);
            }
            error.into_response()
        }
    }
}

/// Answers `503` when `in_flight` has no permit left. The permit is held until the response is ready.
pub(crate) async fn shed_load(State(in_flight): State<Arc<Semaphore>>, request: Request, next: Next) -> Response {
    match in_flight.try_acquire() {
        Ok(_permit) => next.run(request).await,
        Err(_) => {
            tracing::warn!("refusing a request: the concurrency limit is reached");
            if is_webhook(&request) {
                count_refused_webhook(&ApiError::Overloaded);
            }
            ApiError::Overloaded.into_response()
        }
    }
}
