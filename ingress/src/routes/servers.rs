//! The placement registry (`/v1/servers`) and an operator's hand-over of a dedicated server
//! (`POST /v1/tenants/{id}/database`). Unlike tenant changes these write the control plane directly: a
//! server's admin URL is a secret that must never travel through NATS, and the caller must learn at once
//! whether Landlord can use the server. Every admin URL is checked by connecting before it is stored, is
//! stored encrypted (`LANDLORD_SECRET_KEYS`), and is never answered back: a server shows only its address.

use std::time::Duration;

use axum::{
    Json,
    extract::{Path, State, rejection::JsonRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use landlord_protocol::{Action, Command, CommandId, DbEngine, Placement};
use landlord_worker::{
    store::{NewServer, ServerName, ServerState, Store, entities::db_server},
    tenant_db::TenantDbServer,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::admin::{Accepted, Caller, TenantPath, body, existing, require_status, store};
use crate::{AppState, error::ApiError};

/// How long Landlord tries to reach a server it is given before answering that it cannot.
const CONNECT_CHECK: Duration = Duration::from_secs(10);

/// The most tenants one server may be given.
const MAX_CAPACITY: u32 = 1_000_000;

/// A registered database server. Never its admin URL: only the host and port it points at.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServerView {
    pub name: String,
    /// `mysql` (MySQL or MariaDB) or `postgres`.
    pub engine: String,
    /// `shared` or `dedicated`.
    pub kind: String,
    /// `creating`, `open`, `draining` or `closed`.
    pub state: String,
    pub capacity: i32,
    /// Tenants placed on it.
    pub placed: i32,
    /// Places left for new tenants (0 unless open).
    pub free: i32,
    /// `host:port` of its admin URL.
    pub address: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServerList {
    pub servers: Vec<ServerView>,
}

fn view(row: db_server::Model) -> ServerView {
    let address = row.address;
    let free = if row.state == ServerState::Open.as_str() { (row.capacity - row.placed).max(0) } else { 0 };
    ServerView {
        name: row.name,
        engine: row.engine,
        kind: row.kind,
        state: row.state,
        capacity: row.capacity,
        placed: row.placed,
        free,
        address,
        created_at: row.created_at.to_rfc3339(),
    }
}

fn internal(e: impl Into<anyhow::Error>) -> ApiError {
    ApiError::Internal(e.into())
}

/// The store, able to encrypt admin URLs.
fn writable(state: &AppState) -> Result<&Store, ApiError> {
    let store = store(state)?;
    if !store.has_secrets() {
        return Err(ApiError::NoSecretKeys);
    }
    Ok(store)
}

/// Connects to the server as its administrator and checks it may create databases and logins. The
/// answer never repeats the URL's password.
async fn check_server(url: &SecretString) -> Result<DbEngine, ApiError> {
    let engine =
        landlord_worker::placement::check_admin_url(url).map_err(|e| ApiError::bad_request("bad_admin_url", e))?;
    let server = TenantDbServer::new(url).await.map_err(|e| ApiError::bad_request("bad_admin_url", e.message))?;
    let raw_password = url::Url::parse(url.expose_secret()).ok().and_then(|u| u.password().map(str::to_owned));
    let secrets: Vec<String> =
        [server.admin_password(), raw_password].into_iter().flatten().filter(|p| !p.is_empty()).collect();
    let redact = |text: String| secrets.iter().fold(text, |t, p| t.replace(p.as_str(), "[redacted]"));
    let checked = tokio::time::timeout(CONNECT_CHECK, server.check()).await;
    match checked {
        Ok(Ok(())) => Ok(engine),
        Ok(Err(e)) => {
            Err(ApiError::ServerUnreachable(redact(format!("Landlord cannot use this server: {}", e.message))))
        }
        Err(_) => Err(ApiError::ServerUnreachable(format!(
            "Landlord could not connect to this server within {} s",
            CONNECT_CHECK.as_secs()
        ))),
    }
}

/// `GET /v1/servers`: every registered server with its tenants and free places.
#[utoipa::path(
    get,
    path = "/v1/servers",
    tag = "servers",
    responses(
        (status = 200, body = ServerList),
        (status = 401, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(State(state): State<AppState>, _caller: Caller) -> Result<Json<ServerList>, ApiError> {
    let store = store(&state)?;
    let rows = store.servers().await.map_err(internal)?;
    Ok(Json(ServerList { servers: rows.into_iter().map(view).collect() }))
}

/// A server to register.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewServerBody {
    /// 1 to 63 lowercase letters, digits and `-`, starting with a letter.
    #[schema(value_type = String)]
    pub name: ServerName,
    /// `mysql://user:password@host:port`, `mariadb://…`, `postgres://…`: an administrator that may create
    /// databases and logins. Stored encrypted; never shown again.
    #[schema(value_type = String)]
    pub admin_url: SecretString,
    /// `shared` (the default) or `dedicated`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub kind: Placement,
    /// How many tenants it may hold.
    pub capacity: u32,
}

fn check_capacity(capacity: u32) -> Result<i32, ApiError> {
    if capacity == 0 || capacity > MAX_CAPACITY {
        return Err(ApiError::bad_request("bad_capacity", format!("capacity must be 1 to {MAX_CAPACITY}")));
    }
    Ok(capacity as i32)
}

/// `POST /v1/servers`: registers a server after checking Landlord can connect to it and create databases.
#[utoipa::path(
    post,
    path = "/v1/servers",
    tag = "servers",
    request_body = NewServerBody,
    responses(
        (status = 201, body = ServerView),
        (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "a viewer token"),
        (status = 409, body = crate::error::ErrorBody, description = "a server has that name"),
        (status = 422, body = crate::error::ErrorBody, description = "Landlord cannot connect to it or create databases there"),
        (status = 503, body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    json: Result<Json<NewServerBody>, JsonRejection>,
) -> Result<(StatusCode, Json<ServerView>), ApiError> {
    caller.require_admin()?;
    let b = body(json)?;
    check_capacity(b.capacity)?;
    let store = writable(&state)?;
    if store.server_named(b.name.as_str()).await.map_err(internal)?.is_some() {
        return Err(ApiError::ServerExists(format!("a database server is already registered as {}", b.name)));
    }
    let engine = check_server(&b.admin_url).await?;
    let new = NewServer {
        name: &b.name,
        engine,
        admin_url: Some(&b.admin_url),
        kind: b.kind,
        capacity: b.capacity,
        state: ServerState::Open,
        stack_id: None,
    };
    let Some(row) = store.register_server(new).await.map_err(internal)? else {
        return Err(ApiError::ServerExists(format!("a database server is already registered as {}", b.name)));
    };
    tracing::info!(server = %b.name, engine = engine.as_str(), kind = b.kind.as_str(), capacity = b.capacity, by = %caller.name, "database server registered");
    Ok((StatusCode::CREATED, Json(view(row))))
}

/// What may change on a server.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerChange {
    /// `open` (takes new tenants), `draining` (keeps its tenants, takes no new ones) or `closed`.
    #[schema(value_type = Option<String>)]
    pub state: Option<ServerState>,
    /// How many tenants it may hold; below its tenant count it simply takes no new ones.
    pub capacity: Option<u32>,
}

/// `PATCH /v1/servers/{name}`: opens, drains or closes a server, or changes its capacity.
#[utoipa::path(
    patch,
    path = "/v1/servers/{name}",
    tag = "servers",
    params(("name" = String, Path, description = "the server's name")),
    request_body = ServerChange,
    responses(
        (status = 200, body = ServerView),
        (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "a viewer token"),
        (status = 404, body = crate::error::ErrorBody, description = "no such server"),
        (status = 503, body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn change(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    json: Result<Json<ServerChange>, JsonRejection>,
) -> Result<Json<ServerView>, ApiError> {
    caller.require_admin()?;
    let name = ServerName::parse(&name).map_err(|e| ApiError::bad_request("bad_server_name", e))?;
    let b = body(json)?;
    if b.state == Some(ServerState::Creating) {
        return Err(ApiError::bad_request("bad_state", "a server can be set open, draining or closed"));
    }
    let capacity = b.capacity.map(check_capacity).transpose()?;
    let store = store(&state)?;
    let row = store
        .change_server(name.as_str(), b.state, capacity)
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::ServerNotFound(name.to_string()))?;
    tracing::info!(server = %name, state = ?b.state, capacity = ?b.capacity, by = %caller.name, "database server changed");
    Ok(Json(view(row)))
}

/// An operator's hand-over: the server a waiting tenant's database is to be made on.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandOver {
    /// An administrator's URL (`mysql://…`, `postgres://…`) that may create databases and logins.
    #[schema(value_type = String)]
    pub admin_url: SecretString,
    /// The name to register it under; `dedicated-<subdomain>` by default.
    #[schema(value_type = Option<String>)]
    pub name: Option<ServerName>,
}

/// A dedicated server handed over for an active tenant, kept for the move its next plan change makes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Reserved {
    pub tenant_id: String,
    /// The server registered for the tenant; its database moves there with the plan change.
    pub server: String,
    /// What to do next.
    pub next: String,
}

/// `POST /v1/tenants/{id}/database`: hands a tenant a dedicated server. Landlord checks that it can connect
/// and create databases there and registers it as the tenant's own. A tenant waiting for it resumes where
/// it paused (202); an active tenant keeps it for the move its next plan change to a dedicated plan makes
/// (200): the change then moves its database there.
#[utoipa::path(
    post,
    path = "/v1/tenants/{id}/database",
    tag = "tenants",
    params(("id" = String, Path, description = "the tenant's id")),
    request_body = HandOver,
    responses(
        (status = 202, body = Accepted, description = "a waiting tenant resumes"),
        (status = 200, body = Reserved, description = "an active tenant keeps the server for its move"),
        (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "a viewer token"),
        (status = 404, body = crate::error::ErrorBody, description = "no such tenant"),
        (status = 409, body = crate::error::ErrorBody, description = "the tenant is neither waiting for a server nor active, or has one reserved"),
        (status = 422, body = crate::error::ErrorBody, description = "Landlord cannot connect to it or create databases there"),
        (status = 503, body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn hand_over(
    State(state): State<AppState>,
    caller: Caller,
    TenantPath(tenant): TenantPath,
    json: Result<Json<HandOver>, JsonRejection>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let b = body(json)?;
    let store = writable(&state)?;
    let row = existing(&state, tenant).await?;
    require_status(&row, &["awaiting_operator", "active"], "a hand-over of a database server")?;
    if row.status == "active" {
        return reserve_for_move(store, &caller, &row, &b).await.map(IntoResponse::into_response);
    }
    match row.db_server.as_deref() {
        // A hand-over whose answer was lost, repeated: the tenant has its server; resume it again.
        Some(id) => {
            store
                .server(id)
                .await
                .map_err(internal)?
                .ok_or_else(|| internal(anyhow::anyhow!("tenant {tenant} is placed on an unknown server")))?;
        }
        None => {
            let engine = check_server(&b.admin_url).await?;
            // The plan's engine, else the default server's: the plan's scripts exist for that one.
            let wanted = match plan_engine(&state, &row) {
                Some(e) => Some(e),
                None => store
                    .server_named(landlord_worker::store::DEFAULT_SERVER)
                    .await
                    .map_err(internal)?
                    .and_then(|s| DbEngine::parse(&s.engine)),
            };
            if let Some(wanted) = wanted
                && wanted != engine
            {
                return Err(ApiError::bad_request(
                    "wrong_engine",
                    format!(
                        "tenant {}'s plan needs a {} server; this one is {}",
                        row.slug,
                        wanted.as_str(),
                        engine.as_str()
                    ),
                ));
            }
            let server = register_dedicated(store, &row.slug, b.name.as_ref(), engine, &b.admin_url).await?;
            let placed = store.place_on(&tenant, &server.id).await;
            if !matches!(placed, Ok(true)) {
                // Nothing half-done stays behind: the server registered for it is forgotten again.
                if let Err(e) = store.forget_unused_server(&server.id).await {
                    tracing::warn!(error = %e, server = %server.name, "a server registered for a failed hand-over is left");
                }
                return match placed {
                    Ok(_) => {
                        Err(ApiError::Conflict(format!("tenant {} was placed on another server meanwhile", row.slug)))
                    }
                    Err(e) => Err(internal(e)),
                };
            }
            tracing::info!(tenant_id = %tenant, server = %server.name, by = %caller.name, "dedicated database server handed over");
        }
    }
    // The same command the workers' timer sends for a waiting tenant that can go on: one resume, not two.
    let since = row.awaiting_since.map_or(0, |t| t.timestamp_micros());
    let id = CommandId::derived(&format!("resume-{tenant}-{since}")).map_err(internal)?;
    super::admin::publish(&state, &caller, Command::new(id, tenant, caller.requested_by(), Action::Retry))
        .await
        .map(IntoResponse::into_response)
}

/// An active tenant's hand-over: the server is registered as its own and a place there reserved for the
/// move of its database, which its next plan change to a dedicated plan makes.
async fn reserve_for_move(
    store: &Store,
    caller: &Caller,
    row: &landlord_worker::store::entities::tenant::Model,
    b: &HandOver,
) -> Result<(StatusCode, Json<Reserved>), ApiError> {
    let tenant = landlord_protocol::TenantId::parse(&row.id).map_err(|e| internal(anyhow::anyhow!(e)))?;
    if let Some(reserved) = &row.moving_to {
        let name = store.server(reserved).await.map_err(internal)?.map_or_else(|| reserved.clone(), |s| s.name);
        return Err(ApiError::Conflict(format!(
            "tenant {} has a place reserved on database server {name} already (a move under way or to come)",
            row.slug
        )));
    }
    let engine = check_server(&b.admin_url).await?;
    let current = store.placement_of(&tenant).await.map_err(internal)?;
    let wanted = current.as_ref().and_then(|s| DbEngine::parse(&s.engine));
    if let Some(wanted) = wanted
        && wanted != engine
    {
        return Err(ApiError::bad_request(
            "wrong_engine",
            format!("tenant {}'s database is {}; this server is {}", row.slug, wanted.as_str(), engine.as_str()),
        ));
    }
    if current.is_some_and(|s| s.kind == Placement::Dedicated.as_str()) {
        return Err(ApiError::Conflict(format!("tenant {} is on a dedicated server already", row.slug)));
    }
    let server = register_dedicated(store, &row.slug, b.name.as_ref(), engine, &b.admin_url).await?;
    let reserved = store.reserve_on(&tenant, &server.id).await;
    if !matches!(reserved, Ok(true)) {
        if let Err(e) = store.forget_unused_server(&server.id).await {
            tracing::warn!(error = %e, server = %server.name, "a server registered for a failed hand-over is left");
        }
        return match reserved {
            Ok(_) => Err(ApiError::Conflict(format!("tenant {} had a place reserved meanwhile", row.slug))),
            Err(e) => Err(internal(e)),
        };
    }
    tracing::info!(tenant_id = %tenant, server = %server.name, by = %caller.name, "dedicated database server handed over for a move");
    Ok((
        StatusCode::OK,
        Json(Reserved {
            tenant_id: tenant.to_string(),
            server: server.name.clone(),
            next: format!(
                "change tenant {}'s plan to a dedicated plan: its database moves to {} (POST /v1/tenants/{}/plan)",
                row.slug, server.name, tenant
            ),
        }),
    ))
}

/// The engine the tenant's plan names, if it names one.
fn plan_engine(state: &AppState, row: &landlord_worker::store::entities::tenant::Model) -> Option<DbEngine> {
    let package = landlord_protocol::PackageId::try_from(row.package_id as u32).ok()?;
    let kind = landlord_protocol::SubscriptionTypeId::try_from(row.subscription_type_id as u32).ok()?;
    state.plans.get(package, kind)?.engine
}

/// Registers a tenant's own server: under the name given, else `dedicated-<subdomain>` (with a short
/// random suffix when that is taken).
async fn register_dedicated(
    store: &Store,
    slug: &str,
    name: Option<&ServerName>,
    engine: DbEngine,
    url: &SecretString,
) -> Result<db_server::Model, ApiError> {
    let base: String = format!("dedicated-{slug}").chars().take(58).collect();
    let base = base.trim_end_matches('-').to_owned();
    let candidates: Vec<String> = match name {
        Some(n) => vec![n.to_string()],
        None => {
            let suffix = &uuid::Uuid::new_v4().simple().to_string()[..4];
            vec![base.clone(), format!("{base}-{suffix}")]
        }
    };
    for candidate in candidates {
        let name = ServerName::parse(&candidate).map_err(|e| ApiError::bad_request("bad_server_name", e))?;
        let new = NewServer {
            name: &name,
            engine,
            admin_url: Some(url),
            kind: Placement::Dedicated,
            capacity: 1,
            state: ServerState::Open,
            stack_id: None,
        };
        if let Some(row) = store.register_server(new).await.map_err(internal)? {
            return Ok(row);
        }
    }
    Err(ApiError::ServerExists("a database server is already registered under that name".into()))
}
