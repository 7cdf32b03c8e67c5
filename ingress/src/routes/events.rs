//! Progress as Server-Sent Events: `GET /v1/tenants/{id}/events` (one tenant, whose purchase may not have
//! made a tenant yet) and `GET /v1/events` (every tenant). History first, then live. Each event's `id` is
//! its JetStream sequence, so a client that reconnects with `Last-Event-ID` gets every later event once and
//! none it saw. A comment line every `LANDLORD_HTTP_EVENT_KEEP_ALIVE_SECS` (15 s) keeps proxies from
//! closing a quiet stream. Viewers may read.

use std::convert::Infallible;

use axum::{
    extract::State,
    http::HeaderMap,
    response::{
        IntoResponse,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::{Stream, StreamExt};
use landlord_protocol::TenantId;

use super::admin::{Caller, TenantPath};
use crate::{AppState, error::ApiError};

/// `GET /v1/tenants/{id}/events`: the tenant's progress events.
#[utoipa::path(
    get,
    path = "/v1/tenants/{id}/events",
    tag = "events",
    params(
        ("id" = String, Path, description = "the tenant's id"),
        ("Last-Event-ID" = Option<String>, Header, description = "the last event id received: the stream resumes after it"),
    ),
    responses(
        (status = 200, content_type = "text/event-stream", description = "`event: progress`, `id: <sequence>`, `data: <progress event JSON>`"),
        (status = 400, body = crate::error::ErrorBody, description = "a Last-Event-ID that is not an event id"),
        (status = 401, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody, description = "NATS is unavailable, or too many streams are open"),
    ),
    security(("bearer" = []))
)]
pub async fn tenant_events(
    State(state): State<AppState>,
    _caller: Caller,
    TenantPath(tenant): TenantPath,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    events(&state, Some(tenant), &headers).await
}

/// `GET /v1/events`: every tenant's progress events.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "events",
    params(("Last-Event-ID" = Option<String>, Header, description = "the last event id received: the stream resumes after it")),
    responses(
        (status = 200, content_type = "text/event-stream", description = "`event: progress`, `id: <sequence>`, `data: <progress event JSON>`"),
        (status = 400, body = crate::error::ErrorBody, description = "a Last-Event-ID that is not an event id"),
        (status = 401, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody, description = "NATS is unavailable, or too many streams are open"),
    ),
    security(("bearer" = []))
)]
pub async fn all_events(
    State(state): State<AppState>,
    _caller: Caller,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    events(&state, None, &headers).await
}

/// The sequence in `Last-Event-ID`, if the header is there.
fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else { return Ok(None) };
    let bad =
        || ApiError::bad_request("bad_last_event_id", "Last-Event-ID must be an event id this ingress sent (a number)");
    // Not text at all is as wrong as text that is not a number: never a silent replay from the start.
    let text = value.to_str().map_err(|_| bad())?.trim();
    if text.is_empty() {
        return Ok(None);
    }
    // Digits only: `u64::from_str` would take "+42" too, an id this ingress never sent.
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    text.parse::<u64>().map(Some).map_err(|_| bad())
}

async fn events(
    state: &AppState,
    tenant: Option<TenantId>,
    headers: &HeaderMap,
) -> Result<([(&'static str, &'static str); 1], Sse<impl Stream<Item = Result<Event, Infallible>> + use<>>), ApiError> {
    let after = last_event_id(headers)?;
    // Held as long as the stream is open: dropped with it when the client goes.
    let permit = state.event_streams.clone().try_acquire_owned().map_err(|_| ApiError::Overloaded)?;
    let progress = state.bus.progress_after(tenant.as_ref(), after).await.map_err(ApiError::Unavailable)?;
    let events = progress.map(move |(seq, event)| {
        let _open = &permit;
        let data = serde_json::to_string(&event).expect("a progress event serializes");
        Ok(Event::default().event("progress").id(seq.to_string()).data(data))
    });
    // `X-Accel-Buffering: no`: a buffering proxy in front (nginx) passes each event on as it comes.
    Ok(([("x-accel-buffering", "no")], Sse::new(events).keep_alive(KeepAlive::new().interval(state.event_keep_alive))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_id_is_a_sequence_or_nothing() {
        let mut headers = HeaderMap::new();
        assert_eq!(last_event_id(&headers).unwrap(), None);
        headers.insert("last-event-id", "42".parse().unwrap());
        assert_eq!(last_event_id(&headers).unwrap(), Some(42));
        headers.insert("last-event-id", "42; DROP".parse().unwrap());
        assert!(last_event_id(&headers).is_err());
        headers.insert("last-event-id", "+42".parse().unwrap());
        assert!(last_event_id(&headers).is_err());
        headers.insert("last-event-id", "".parse().unwrap());
        assert_eq!(last_event_id(&headers).unwrap(), None);
    }
}
