//! sea-orm entities of the control-plane tables (see `migrations/`).

pub mod tenant {
    use sea_orm::entity::prelude::*;

    /// `Debug` is written by hand: it leaves out the stored password, encrypted or not.
    #[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tenants")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub slug: String,
        pub store_name: String,
        pub contact_email: String,
        pub package_id: i32,
        pub subscription_type_id: i32,
        pub status: String,
        pub last_error: Option<String>,
        pub db_engine: Option<String>,
        pub db_name: Option<String>,
        pub db_login: Option<String>,
        /// The tenant login's password, encrypted (`v1:<key id>:…`, see `secret_box`); read through
        /// `Store::database_password`. Never logged, never in an API response.
        pub db_password: Option<String>,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
        pub hostname: Option<String>,
        pub api_hostname: Option<String>,
        /// DNS could not be confirmed within its budget; a background task keeps trying.
        pub dns_pending: bool,
        pub stack_id: Option<String>,
        /// The stack's outputs as a JSON object.
        pub stack_outputs: Option<String>,
        /// The failing resource and its reason, from the stack events.
        pub stack_failure: Option<String>,
        /// The Stripe subscription that pays for the tenant, whose events drive its life.
        pub stripe_subscription: Option<String>,
        pub stripe_customer: Option<String>,
        /// Stripe reports a failed payment it is still retrying (`past_due`); the tenant keeps serving.
        pub payment_overdue: bool,
        /// When the tenant is to be offboarded (its subscription was deleted); a durable timer.
        pub offboard_at: Option<ChronoDateTimeUtc>,
        /// The registered database server (`db_servers.id`) its database is placed on.
        pub db_server: Option<String>,
        /// While `awaiting_operator`: what a person must do.
        pub awaiting_reason: Option<String>,
        pub awaiting_since: Option<ChronoDateTimeUtc>,
        /// When operators were last told about it (a durable reminder timer).
        pub operator_reminded_at: Option<ChronoDateTimeUtc>,
        /// During a move: the server its database is being copied to (its place there is taken).
        pub moving_to: Option<String>,
        /// Landlord began the copy on `moving_to`: a database of the tenant's name there is Landlord's.
        pub move_copy_started: bool,
        /// After a move: the server whose old copy is still to be dropped (its place is held until then).
        pub moved_from: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    impl std::fmt::Debug for Model {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("tenant::Model")
                .field("id", &self.id)
                .field("slug", &self.slug)
                .field("status", &self.status)
                .field("package_id", &self.package_id)
                .field("subscription_type_id", &self.subscription_type_id)
                .field("last_error", &self.last_error)
                .field("db_engine", &self.db_engine)
                .field("db_name", &self.db_name)
                .field("db_login", &self.db_login)
                .field("db_password", &self.db_password.as_ref().map(|_| "[hidden]"))
                .field("hostname", &self.hostname)
                .field("dns_pending", &self.dns_pending)
                .field("stack_id", &self.stack_id)
                .field("updated_at", &self.updated_at)
                .finish_non_exhaustive()
        }
    }
}

pub mod run {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "runs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub command_id: String,
        pub kind: String,
        pub status: String,
        pub started_at: ChronoDateTimeUtc,
        pub finished_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod tenant_step {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tenant_steps")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub step: String,
        pub run_id: String,
        pub status: String,
        pub attempts: i32,
        pub started_at: ChronoDateTimeUtc,
        pub finished_at: Option<ChronoDateTimeUtc>,
        pub duration_ms: Option<i64>,
        pub error_code: Option<String>,
        pub error_message: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod processed_command {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "processed_commands")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub command_id: String,
        pub tenant_id: String,
        pub kind: String,
        pub processed_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod tenant_lease {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tenant_leases")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        pub holder: String,
        pub expires_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod tenant_resource {
    use sea_orm::entity::prelude::*;

    /// A resource Landlord claimed for a tenant before creating it.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tenant_resources")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub kind: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub tenant_id: String,
        pub claimed_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod stripe_subscription {
    use sea_orm::entity::prelude::*;

    /// The newest known snapshot of one Stripe subscription.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "stripe_subscriptions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub customer: Option<String>,
        pub status: String,
        /// The prices of its items, as a JSON array of ids.
        pub prices: String,
        pub deleted: bool,
        /// The `created` of the event (or the time of the API read) that showed this snapshot.
        pub event_created: ChronoDateTimeUtc,
        pub event_id: String,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod audit_entry {
    use sea_orm::entity::prelude::*;

    /// One command that asked for a change, as first handled.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_log")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub command_id: String,
        pub at: ChronoDateTimeUtc,
        /// Who asked: `admin:<token name>`, `stripe`, Landlord itself, or what a NATS publisher wrote.
        pub actor: String,
        /// The command's kind.
        pub action: String,
        pub tenant_id: String,
        /// What was asked beyond the kind (the plan, the subscription event), as JSON.
        pub detail: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod refused_purchase {
    use sea_orm::entity::prelude::*;

    /// A paid purchase that did not become a tenant, and why; open until an operator dismisses it.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refused_purchases")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        pub command_id: String,
        /// `invalid_metadata` or `subdomain_taken`.
        pub code: String,
        pub reason: String,
        pub checkout_session: Option<String>,
        pub customer: Option<String>,
        pub contact_email: Option<String>,
        /// The subdomain the purchase asked for, when it was a valid one.
        pub subdomain: Option<String>,
        pub refused_at: ChronoDateTimeUtc,
        pub dismissed_at: Option<ChronoDateTimeUtc>,
        pub dismissed_by: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod db_server {
    use sea_orm::entity::prelude::*;

    /// `Debug` is written by hand: it leaves out the admin URL, encrypted or not.
    #[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "db_servers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub engine: String,
        /// Encrypted (`v1:<key id>:…`); read through `Store::server_admin_url`.
        pub admin_url: Option<String>,
        /// `host:port` of the admin URL, for lists.
        pub address: Option<String>,
        pub kind: String,
        pub capacity: i32,
        pub placed: i32,
        pub state: String,
        /// The CloudFormation stack a template made it from.
        pub stack_id: Option<String>,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    impl std::fmt::Debug for Model {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("db_server::Model")
                .field("id", &self.id)
                .field("name", &self.name)
                .field("engine", &self.engine)
                .field("kind", &self.kind)
                .field("capacity", &self.capacity)
                .field("placed", &self.placed)
                .field("state", &self.state)
                .finish_non_exhaustive()
        }
    }
}

pub mod mail {
    use sea_orm::entity::prelude::*;

    /// A message waiting to be sent (or sent): the welcome, or a notice to operators.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "mail_outbox")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// `welcome` or `operator`.
        pub kind: String,
        pub tenant_id: Option<String>,
        pub recipient: String,
        pub subject: String,
        pub body: String,
        pub created_at: ChronoDateTimeUtc,
        pub attempts: i32,
        pub next_attempt_at: ChronoDateTimeUtc,
        pub sent_at: Option<ChronoDateTimeUtc>,
        pub last_error: Option<String>,
        /// When the sender gave up on it; never claimed again.
        pub given_up_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
