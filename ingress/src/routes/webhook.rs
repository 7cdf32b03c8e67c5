//! `POST /webhooks/stripe`: verify the signature over the raw body, decide, and answer 2xx only once
//! JetStream has stored the command.

use axum::{
    Json,
    body::Bytes,
    extract::{
        State,
        rejection::{BytesRejection, FailedToBufferBody},
    },
    http::HeaderMap,
};
use landlord_worker::telemetry;
use serde_json::{Value, json};

use crate::{
    AppState,
    error::ApiError,
    stripe::{EventDecision, decide, signature},
};

/// Largest body accepted, on this route and every other: Stripe events are a few kilobytes and admin
/// requests smaller still, so anything larger could only cost memory.
pub const MAX_BODY: usize = 64 * 1024;

#[tracing::instrument(name = "stripe_webhook", skip_all)]
pub async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    // Counted as received by the time-out layer, which sees every request, even one refused before here.
    let answer = handle(&state, &headers, body).await;
    if let Err(e) = &answer {
        metrics::counter!(telemetry::WEBHOOKS_REJECTED, "reason" => e.code()).increment(1);
    }
    answer
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(|rejection| match rejection {
        BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
            ApiError::TooLarge { limit: MAX_BODY }
        }
        // The body broke off or could not be read: the cause is the connection's, not for the caller.
        other => {
            tracing::debug!(error = %other, "cannot read a webhook body");
            ApiError::bad_request("bad_body", "the request body could not be read")
        }
    })?;
    let header = headers.get("stripe-signature").map(|v| v.to_str().unwrap_or_default());
    let now = chrono::Utc::now().timestamp();
    signature::verify(header, &body, &state.stripe_secrets, state.stripe_tolerance, now)
        .map_err(|e| ApiError::bad_request("bad_signature", e))?;
    metrics::counter!(telemetry::WEBHOOKS_VERIFIED).increment(1);
    accept_stripe_event(state, &body).await.map(Json)
}

/// Acts on a verified event body. Knows nothing of HTTP beyond the error it returns.
pub async fn accept_stripe_event(state: &AppState, body: &[u8]) -> Result<Value, ApiError> {
    let decision = decide(body, &state.plans).map_err(|e| {
        let code = match e {
            crate::stripe::WebhookError::Metadata(_) => "invalid_metadata",
            crate::stripe::WebhookError::BadSessionId(_) => "bad_session",
            crate::stripe::WebhookError::BadSubscription(_) => "bad_subscription",
            _ => "bad_event",
        };
        ApiError::bad_request(code, e)
    })?;
    match decision {
        EventDecision::Ignore(reason) => {
            tracing::info!(%reason, "ignoring Stripe event");
            Ok(json!({"received": true, "ignored": reason}))
        }
        // Answered 2xx once stored: the refusal is durable, and Stripe resending the event cannot fix it.
        EventDecision::Refuse { command: cmd, reason } => {
            let stored = state.bus.publish_command(&cmd).await.map_err(ApiError::Unavailable)?;
            tracing::warn!(tenant_id = %cmd.tenant_id, command_id = %cmd.id, %reason, "paid purchase refused; recorded for an operator");
            Ok(json!({
                "received": true, "refused": reason, "tenant_id": cmd.tenant_id,
                "command_id": cmd.id, "duplicate": stored.duplicate,
            }))
        }
        EventDecision::Subscription(cmd) => {
            let stored = state.bus.publish_command(&cmd).await.map_err(ApiError::Unavailable)?;
            tracing::info!(command_id = %cmd.id, duplicate = stored.duplicate, "subscription event stored");
            Ok(json!({"received": true, "command_id": cmd.id, "duplicate": stored.duplicate}))
        }
        EventDecision::Provision(cmd) => {
            let stored = state.bus.publish_command(&cmd).await.map_err(ApiError::Unavailable)?;
            tracing::info!(tenant_id = %cmd.tenant_id, command_id = %cmd.id, duplicate = stored.duplicate, "provision command stored");
            Ok(
                json!({"received": true, "tenant_id": cmd.tenant_id, "command_id": cmd.id, "duplicate": stored.duplicate}),
            )
        }
    }
}
