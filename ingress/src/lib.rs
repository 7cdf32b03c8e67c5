//! `landlord-ingress`: the thin HTTP edge. It verifies Stripe webhooks and admin requests, turns them into
//! commands and answers only once JetStream has stored them. It holds no tenant state. What one caller may
//! cost is bounded ([`config::Limits`]): header and request timeouts, a concurrency limit, a body limit,
//! and a limit on failed admin authentications per client address.

pub mod admin_tokens;
mod auth_failures;
pub mod config;
mod dashboard;
mod error;
mod limits;
pub mod openapi;
mod routes;
mod serve;
pub mod stripe;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    middleware,
    routing::{get, post},
};
use landlord_bus::{Bus, StreamSettings};
use secrecy::SecretString;
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

pub use auth_failures::{AuthFailures, Refusal};
pub use config::{IngressConfig, Limits};
pub use error::ApiError;
pub use routes::webhook::accept_stripe_event;

/// Everything handlers share, built once in [`run`].
#[derive(Debug, Clone)]
pub struct AppState {
    pub bus: Bus,
    pub stripe_secrets: Arc<[SecretString]>,
    pub stripe_tolerance: Duration,
    /// Tokens accepted on the admin API, with their names and roles.
    pub admin_tokens: Arc<[admin_tokens::AdminToken]>,
    /// The control plane, once connected (the admin API's reads and its 404s).
    pub store: Arc<std::sync::OnceLock<landlord_worker::store::Store>>,
    /// Whether a control plane is configured at all.
    pub has_control_plane: bool,
    /// Failed admin authentications per client address, shared by every admin route.
    pub admin_auth_failures: Arc<AuthFailures>,
    /// One permit per request being handled ([`Limits::max_concurrency`]).
    pub in_flight: Arc<Semaphore>,
    /// [`Limits::request_timeout`].
    pub request_timeout: Duration,
    /// One permit per open Server-Sent Events stream ([`Limits::max_event_streams`]).
    pub event_streams: Arc<Semaphore>,
    /// [`Limits::event_keep_alive`].
    pub event_keep_alive: Duration,
    /// The plan catalogue purchases buy from.
    pub plans: Arc<landlord_protocol::Plans>,
}

impl AppState {
    pub fn new(bus: Bus, cfg: IngressConfig) -> Self {
        Self {
            bus,
            stripe_secrets: cfg.stripe_webhook_secrets.into(),
            stripe_tolerance: cfg.stripe_tolerance,
            admin_tokens: cfg.admin_tokens.into(),
            store: Arc::default(),
            has_control_plane: cfg.database_url.is_some(),
            admin_auth_failures: Arc::new(AuthFailures::new(cfg.limits.admin_auth_failures_per_minute)),
            in_flight: Arc::new(Semaphore::new(cfg.limits.max_concurrency)),
            request_timeout: cfg.limits.request_timeout,
            event_streams: Arc::new(Semaphore::new(cfg.limits.max_event_streams)),
            event_keep_alive: cfg.limits.event_keep_alive,
            plans: Arc::new(cfg.plans),
        }
    }
}

/// The routes and their limits. It must be served with `into_make_service_with_connect_info::<SocketAddr>()`
/// (as [`run`] does): the admin routes need the client's address.
pub fn router(state: AppState) -> Router {
    Router::new()
        // Routes that do work count against the concurrency limit; add new ones above the route_layer.
        .route("/webhooks/stripe", post(routes::webhook::stripe_webhook))
        .route("/v1/tenants", get(routes::tenants::list).post(routes::admin::create))
        .route("/v1/tenants/{id}", get(routes::tenants::show).delete(routes::admin::offboard))
        .route("/v1/tenants/{id}/provision", post(routes::admin::retry))
        .route("/v1/tenants/{id}/suspend", post(routes::admin::suspend))
        .route("/v1/tenants/{id}/resume", post(routes::admin::resume))
        .route("/v1/tenants/{id}/plan", post(routes::admin::change_plan))
        .route("/v1/tenants/{id}/database", post(routes::servers::hand_over))
        .route("/v1/servers", get(routes::servers::list).post(routes::servers::register))
        .route("/v1/servers/{name}", axum::routing::patch(routes::servers::change))
        .route("/v1/operator-queue", get(routes::tenants::operator_queue))
        .route("/v1/audit", get(routes::tenants::audit))
        .route("/v1/events", get(routes::events::all_events))
        .route("/v1/tenants/{id}/events", get(routes::events::tenant_events))
        .route("/openapi.json", get(openapi::serve))
        .route("/", get(dashboard::index))
        .route("/dashboard/app.js", get(dashboard::app))
        .route("/dashboard/style.css", get(dashboard::style))
        .route_layer(middleware::from_fn_with_state(state.in_flight.clone(), limits::shed_load))
        // Liveness and readiness must answer while the ingress is saturated, or an orchestrator would
        // restart or unroute every busy but healthy replica at once.
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::health::metrics))
        .method_not_allowed_fallback(routes::method_not_allowed)
        .fallback(routes::not_found)
        .layer(DefaultBodyLimit::max(routes::webhook::MAX_BODY))
        .layer(middleware::from_fn_with_state(state.request_timeout, limits::time_out))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves the ingress on `listener` until `shutdown` is cancelled. Streams are created in the background
/// so the ingress starts (and reports not-ready) while NATS is still coming up.
pub async fn run(cfg: IngressConfig, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    landlord_worker::telemetry::metrics();
    let bus = Bus::connect_with(&cfg.nats_settings()).await?;
    let settings =
        StreamSettings { duplicate_window: cfg.duplicate_window, replicas: cfg.replicas, ..StreamSettings::default() };
    tokio::spawn(ensure_streams_until_done(bus.clone(), settings, shutdown.clone()));
    let database_url = cfg.database_url.clone();
    let keys = match &cfg.secret_keys {
        Some(text) => Some(landlord_worker::secret_box::SecretKeys::parse(text)?),
        None => None,
    };
    let limits = cfg.limits;
    let plans = format!("{} ({} plans)", cfg.plans.source(), cfg.plans.all().len());
    let state = AppState::new(bus, cfg);
    if let Some(url) = database_url {
        tokio::spawn(connect_store_until_done(url, keys, state.store.clone(), shutdown.clone()));
    }
    tracing::info!(addr = %listener.local_addr()?, ?limits, %plans, "ingress listening");
    // A request in flight at shutdown has at most its timeout left to finish.
    serve::serve(listener, router(state), limits.header_timeout, limits.request_timeout, shutdown).await;
    Ok(())
}

/// Connects the control plane in the background, so the ingress serves webhooks while it is down.
async fn connect_store_until_done(
    url: SecretString,
    keys: Option<landlord_worker::secret_box::SecretKeys>,
    slot: Arc<std::sync::OnceLock<landlord_worker::store::Store>>,
    shutdown: CancellationToken,
) {
    use secrecy::ExposeSecret;
    // Soon after start, a worker may be creating the tables: look again quickly at first, then every 2 s.
    let mut wait = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        match landlord_worker::store::Store::connect_existing(url.expose_secret()).await {
            Ok(store) => {
                let store = match keys {
                    Some(keys) => store.with_secrets(keys),
                    None => store,
                };
                slot.set(store).ok();
                return;
            }
            Err(e) => tracing::warn!(
                error = %e,
                "control plane not reachable yet (or no worker has created its tables); the admin API answers 503 meanwhile"
            ),
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => return,
        }
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

async fn ensure_streams_until_done(bus: Bus, settings: StreamSettings, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        match bus.ensure_streams(&settings).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %error::chain(&e), "JetStream streams not ready yet; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
