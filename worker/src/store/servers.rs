//! The registry of tenant database servers and the placement of tenants on them. A server's admin URL is
//! a secret, encrypted like tenant passwords and bound to the server's id. Placement on a shared server is
//! a compare-and-set on the server's `placed` count inside the transaction that records the tenant's
//! server, so workers placing tenants at the same time can never overfill one, and a crash leaves either
//! both written or neither.

use chrono::Utc;
use landlord_protocol::{DbEngine, Placement, TenantId};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
    sea_query::{Expr, ExprTrait},
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{
    Store, StoreError,
    entities::{db_server, tenant},
};

/// A tenant's hold on a server's place: where its database is, where a move copies it to, and where the
/// old copy of a move waits to be dropped. Each counts in the server's `placed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    Placed,
    MovingTo,
    MovedFrom,
}

impl Slot {
    fn column(self) -> tenant::Column {
        match self {
            Self::Placed => tenant::Column::DbServer,
            Self::MovingTo => tenant::Column::MovingTo,
            Self::MovedFrom => tenant::Column::MovedFrom,
        }
    }

    fn held(self, row: tenant::Model) -> Option<String> {
        match self {
            Self::Placed => row.db_server,
            Self::MovingTo => row.moving_to,
            Self::MovedFrom => row.moved_from,
        }
    }
}

/// The name the default server (`LANDLORD_TENANT_DB_URL`) is registered under.
pub const DEFAULT_SERVER: &str = "default";

/// A server's name: 1 to 63 lowercase letters, digits and `-`, starting with a letter; what operators type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ServerName(String);

impl ServerName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = (1..=63).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!("server name {s:?} must be 1 to 63 lowercase letters, digits and '-', starting with a letter"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ServerName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for ServerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a server takes new tenants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerState {
    /// A template's stack is being made; it opens once its admin URL is known.
    Creating,
    /// Takes new tenants while it has room.
    Open,
    /// Keeps its tenants, takes no new ones.
    Draining,
    /// Takes no new tenants; meant to be empty (its tenants moved or offboarded).
    Closed,
}

impl ServerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Open => "open",
            Self::Draining => "draining",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Creating, Self::Open, Self::Draining, Self::Closed].into_iter().find(|p| p.as_str() == s)
    }
}

/// A server to register.
#[derive(Debug, Clone, Copy)]
pub struct NewServer<'a> {
    pub name: &'a ServerName,
    pub engine: DbEngine,
    /// `None` while a template's stack is being made.
    pub admin_url: Option<&'a SecretString>,
    pub kind: Placement,
    pub capacity: u32,
    pub state: ServerState,
    pub stack_id: Option<&'a str>,
}

/// The associated data a server's admin URL is sealed with.
fn url_context(id: &str) -> String {
    format!("db_server:{id}:admin_url")
}

impl Store {
    /// Registers a server; `None` when the name is taken.
    pub async fn register_server(&self, new: NewServer<'_>) -> Result<Option<db_server::Model>, StoreError> {
        let name = new.name.to_string();
        match self.server_row(new)?.insert(self.connection()).await {
            Ok(model) => Ok(Some(model)),
            Err(e) => match self.server_named(&name).await? {
                Some(_) => Ok(None),
                None => Err(e.into()),
            },
        }
    }

    /// A new server's row, its admin URL sealed under a new id.
    fn server_row(&self, new: NewServer<'_>) -> Result<db_server::ActiveModel, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        let sealed = match new.admin_url {
            Some(url) => Some(self.keys()?.encrypt(url, &url_context(&id))),
            None => None,
        };
        let now = Utc::now();
        Ok(db_server::ActiveModel {
            id: Set(id),
            name: Set(new.name.to_string()),
            engine: Set(new.engine.as_str().into()),
            admin_url: Set(sealed),
            address: Set(new.admin_url.and_then(address_of)),
            kind: Set(new.kind.as_str().into()),
            capacity: Set(i32::try_from(new.capacity).unwrap_or(i32::MAX)),
            placed: Set(0),
            state: Set(new.state.as_str().into()),
            stack_id: Set(new.stack_id.map(str::to_owned)),
            created_at: Set(now),
            updated_at: Set(now),
        })
    }

    /// Every registered server, by name.
    pub async fn servers(&self) -> Result<Vec<db_server::Model>, StoreError> {
        Ok(db_server::Entity::find().order_by_asc(db_server::Column::Name).all(self.connection()).await?)
    }

    pub async fn server(&self, id: &str) -> Result<Option<db_server::Model>, StoreError> {
        Ok(db_server::Entity::find_by_id(id.to_owned()).one(self.connection()).await?)
    }

    pub async fn server_named(&self, name: &str) -> Result<Option<db_server::Model>, StoreError> {
        Ok(db_server::Entity::find().filter(db_server::Column::Name.eq(name)).one(self.connection()).await?)
    }

    /// How many tenants each server holds (`tenants.db_server`), to check the `placed` counts against.
    pub async fn tenants_on(&self, id: &str) -> Result<u64, StoreError> {
        use sea_orm::PaginatorTrait;
        Ok(tenant::Entity::find().filter(tenant::Column::DbServer.eq(id)).count(self.connection()).await?)
    }

    /// The server's admin URL, decrypted; `None` while a template's stack is being made.
    pub fn server_admin_url(&self, row: &db_server::Model) -> Result<Option<SecretString>, StoreError> {
        let Some(stored) = &row.admin_url else { return Ok(None) };
        Ok(Some(self.keys()?.decrypt(stored, &url_context(&row.id))?))
    }

    /// Deletes a server no tenant is placed on (one registered for a hand-over that failed).
    pub async fn forget_unused_server(&self, id: &str) -> Result<(), StoreError> {
        db_server::Entity::delete_many()
            .filter(db_server::Column::Id.eq(id))
            .filter(db_server::Column::Placed.eq(0))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Changes a server's state and/or capacity; `None` when no server has that name.
    pub async fn change_server(
        &self,
        name: &str,
        state: Option<ServerState>,
        capacity: Option<i32>,
    ) -> Result<Option<db_server::Model>, StoreError> {
        let Some(row) = self.server_named(name).await? else { return Ok(None) };
        let mut active: db_server::ActiveModel = row.into();
        if let Some(state) = state {
            active.state = Set(state.as_str().into());
        }
        if let Some(capacity) = capacity {
            active.capacity = Set(capacity);
        }
        active.updated_at = Set(Utc::now());
        Ok(Some(active.update(self.connection()).await?))
    }

    /// Opens a server a template made, with the admin URL (and capacity) its stack's outputs gave.
    pub async fn open_created_server(
        &self,
        id: &str,
        admin_url: &SecretString,
        stack_id: &str,
        capacity: Option<i32>,
    ) -> Result<(), StoreError> {
        let sealed = self.keys()?.encrypt(admin_url, &url_context(id));
        let mut update = db_server::Entity::update_many();
        if let Some(capacity) = capacity.filter(|c| *c > 0) {
            update = update.col_expr(db_server::Column::Capacity, Expr::value(capacity));
        }
        update
            .col_expr(db_server::Column::AdminUrl, Expr::value(sealed))
            .col_expr(db_server::Column::Address, Expr::value(address_of(admin_url)))
            .col_expr(db_server::Column::StackId, Expr::value(stack_id))
            .col_expr(db_server::Column::State, Expr::value(ServerState::Open.as_str()))
            .col_expr(db_server::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(db_server::Column::Id.eq(id))
            .filter(db_server::Column::State.eq(ServerState::Creating.as_str()))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Registers the default server (`LANDLORD_TENANT_DB_URL`) as an open shared server when the registry
    /// is empty, and places on it every tenant whose database was made before placement existed. Returns
    /// whether it registered it. Several workers starting at once register it once (the name is unique).
    pub async fn ensure_default_server(
        &self,
        url: &SecretString,
        engine: DbEngine,
        capacity: u32,
    ) -> Result<bool, StoreError> {
        if !self.servers().await?.is_empty() {
            return Ok(false);
        }
        let name = ServerName::parse(DEFAULT_SERVER).expect("a valid name");
        let new = NewServer {
            name: &name,
            engine,
            admin_url: Some(url),
            kind: Placement::Shared,
            capacity,
            state: ServerState::Open,
            stack_id: None,
        };
        let txn = self.connection().begin().await?;
        // Registered and its earlier tenants placed in one transaction: a crash in between must not leave a
        // registry that looks set up while the tenants on the server are not counted.
        let row = match self.server_row(new)?.insert(&txn).await {
            Ok(row) => row,
            // Another worker registered it first (the name is unique): it placed the earlier tenants too.
            Err(_) => {
                txn.rollback().await?;
                return Ok(false);
            }
        };
        let moved = tenant::Entity::update_many()
            .col_expr(tenant::Column::DbServer, Expr::value(row.id.clone()))
            .filter(tenant::Column::DbServer.is_null())
            .filter(tenant::Column::DbName.is_not_null())
            .filter(tenant::Column::DbPassword.is_not_null())
            .exec(&txn)
            .await?;
        db_server::Entity::update_many()
            .col_expr(db_server::Column::Placed, Expr::value(moved.rows_affected as i32))
            .filter(db_server::Column::Id.eq(row.id.clone()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        tracing::info!(
            server = DEFAULT_SERVER,
            engine = engine.as_str(),
            capacity,
            earlier_tenants = moved.rows_affected,
            "the registry of database servers was empty; LANDLORD_TENANT_DB_URL is registered as an open shared server"
        );
        Ok(true)
    }

    /// Places a tenant on the least-loaded open shared server of `engine` with room, unless it is placed
    /// already (then its server). `None`: every such server is full, draining or closed.
    pub async fn place_shared(
        &self,
        tenant_id: &TenantId,
        engine: DbEngine,
    ) -> Result<Option<db_server::Model>, StoreError> {
        if let Some(placed) = self.placement_of(tenant_id).await? {
            return Ok(Some(placed));
        }
        for server in self.shared_candidates(engine).await? {
            if self.take_slot(tenant_id, &server.id, true, Slot::Placed).await? {
                return self.server(&server.id).await;
            }
            // Not this server: it filled up meanwhile, or the tenant was placed by someone else.
            if let Some(placed) = self.placement_of(tenant_id).await? {
                return Ok(Some(placed));
            }
        }
        Ok(None)
    }

    /// Places a tenant on a given server (a dedicated one made or handed over for it), counting it there.
    /// False when the tenant is placed elsewhere already or the server is full.
    pub async fn place_on(&self, tenant_id: &TenantId, server_id: &str) -> Result<bool, StoreError> {
        if let Some(placed) = self.placement_of(tenant_id).await? {
            return Ok(placed.id == server_id);
        }
        self.take_slot(tenant_id, server_id, false, Slot::Placed).await
    }

    /// The open shared servers of `engine` with room, least loaded first: the smallest share of its
    /// capacity taken, then the fewest tenants.
    pub(super) async fn shared_candidates(&self, engine: DbEngine) -> Result<Vec<db_server::Model>, StoreError> {
        let mut candidates: Vec<db_server::Model> = db_server::Entity::find()
            .filter(db_server::Column::Kind.eq(Placement::Shared.as_str()))
            .filter(db_server::Column::State.eq(ServerState::Open.as_str()))
            .filter(db_server::Column::Engine.eq(engine.as_str()))
            .filter(Expr::col(db_server::Column::Placed).lt(Expr::col(db_server::Column::Capacity)))
            .all(self.connection())
            .await?;
        candidates.sort_by(|a, b| {
            let load = |s: &db_server::Model| f64::from(s.placed) / f64::from(Ord::max(s.capacity, 1));
            load(a).total_cmp(&load(b)).then(a.placed.cmp(&b.placed)).then(a.name.cmp(&b.name))
        });
        Ok(candidates)
    }

    /// Takes a place on `server_id` for `tenant_id` and records it in the tenant's `slot` column
    /// (`db_server`, or `moving_to` for a move), in one transaction whose first statement writes, so SQLite
    /// takes its write lock before anything is read: the count only grows while it is below capacity (and,
    /// with `open_only`, while the server is open), and only into an empty slot.
    pub(super) async fn take_slot(
        &self,
        tenant_id: &TenantId,
        server_id: &str,
        open_only: bool,
        slot: Slot,
    ) -> Result<bool, StoreError> {
        let txn = self.connection().begin().await?;
        let mut take = db_server::Entity::update_many()
            .col_expr(db_server::Column::Placed, Expr::col(db_server::Column::Placed).add(1))
            .col_expr(db_server::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(db_server::Column::Id.eq(server_id))
            .filter(Expr::col(db_server::Column::Placed).lt(Expr::col(db_server::Column::Capacity)));
        if open_only {
            take = take.filter(db_server::Column::State.eq(ServerState::Open.as_str()));
        }
        if take.exec(&txn).await?.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(false);
        }
        let mut recorded = tenant::Entity::update_many()
            .col_expr(slot.column(), Expr::value(server_id))
            .col_expr(tenant::Column::UpdatedAt, Expr::value(Utc::now()));
        if slot == Slot::MovingTo {
            // A new reservation: nothing on it is Landlord's copy yet.
            recorded = recorded.col_expr(tenant::Column::MoveCopyStarted, Expr::value(false));
        }
        let recorded = recorded
            .filter(tenant::Column::Id.eq(tenant_id.to_string()))
            .filter(slot.column().is_null())
            .exec(&txn)
            .await?;
        if recorded.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(false);
        }
        txn.commit().await?;
        Ok(true)
    }

    /// The server a tenant is placed on.
    /// One statement: every step that talks to the tenant's database asks.
    pub async fn placement_of(&self, tenant_id: &TenantId) -> Result<Option<db_server::Model>, StoreError> {
        let placed = sea_orm::sea_query::Query::select()
            .column(tenant::Column::DbServer)
            .from(tenant::Entity)
            .and_where(tenant::Column::Id.eq(tenant_id.to_string()))
            .to_owned();
        Ok(db_server::Entity::find().filter(db_server::Column::Id.in_subquery(placed)).one(self.connection()).await?)
    }

    /// Frees the tenant's slot (its database is gone): the tenant is no longer placed, and its server
    /// counts one tenant less.
    pub async fn release_placement(&self, tenant_id: &TenantId) -> Result<Option<String>, StoreError> {
        self.free_slot(tenant_id, Slot::Placed).await
    }

    /// Empties the tenant's `slot` column and counts its server one tenant less, in one transaction; the
    /// server it held, if any.
    pub(super) async fn free_slot(&self, tenant_id: &TenantId, slot: Slot) -> Result<Option<String>, StoreError> {
        let Some(row) = self.tenant(tenant_id).await? else { return Ok(None) };
        let Some(server) = slot.held(row) else { return Ok(None) };
        let txn = self.connection().begin().await?;
        let mut cleared = tenant::Entity::update_many().col_expr(slot.column(), Expr::value(Option::<String>::None));
        if slot == Slot::MovingTo {
            // In the same update: a flag outliving its reservation would vouch for a database nobody copied.
            cleared = cleared.col_expr(tenant::Column::MoveCopyStarted, Expr::value(false));
        }
        let cleared = cleared
            .filter(tenant::Column::Id.eq(tenant_id.to_string()))
            .filter(slot.column().eq(server.clone()))
            .exec(&txn)
            .await?;
        if cleared.rows_affected == 1 {
            db_server::Entity::update_many()
                .col_expr(db_server::Column::Placed, Expr::col(db_server::Column::Placed).sub(1))
                .filter(db_server::Column::Id.eq(server.clone()))
                .filter(db_server::Column::Placed.gt(0))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(Some(server))
    }

    /// Re-encrypts every server admin URL not under the primary key; part of `landlord secrets rotate`.
    pub(super) async fn rotate_server_secrets(&self, done: &mut super::Rotated) -> Result<(), StoreError> {
        let keys = self.keys()?;
        for row in self.servers().await? {
            let Some(stored) = row.admin_url.clone() else { continue };
            if !keys.needs_rotation(&stored) {
                done.current += 1;
                continue;
            }
            let plain = keys.decrypt(&stored, &url_context(&row.id))?;
            let sealed = keys.encrypt(&plain, &url_context(&row.id));
            let updated = db_server::Entity::update_many()
                .col_expr(db_server::Column::AdminUrl, Expr::value(sealed))
                .filter(db_server::Column::Id.eq(row.id.clone()))
                .filter(db_server::Column::AdminUrl.eq(stored))
                .exec(self.connection())
                .await?;
            if updated.rows_affected == 1 {
                done.rewritten += 1;
            } else {
                done.changed_meanwhile += 1;
            }
        }
        Ok(())
    }
}

/// `host:port` of an admin URL, without its login, password or parameters.
pub fn address_of(url: &SecretString) -> Option<String> {
    use secrecy::ExposeSecret;
    let parsed = url::Url::parse(url.expose_secret()).ok()?;
    let host = parsed.host_str()?;
    Some(match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}
