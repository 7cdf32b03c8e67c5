//! The control-plane database schema (SQLite by default, PostgreSQL in production), as sea-orm
//! migrations. Workers apply them at start.

use sea_orm_migration::prelude::*;

mod m20261122_000001_control_plane;
mod m20261122_000002_infrastructure;
mod m20261122_000003_leases;
mod m20261123_000004_resources;
mod m20261124_000005_refused_purchases;
mod m20261124_000006_subscriptions;
mod m20261124_000007_audit;
mod m20261125_000008_placement;
mod m20261126_000009_moves;
mod m20261127_000010_mail_outbox;
mod m20261128_000011_mail_given_up;

#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_control_plane::Migration),
            Box::new(m20261122_000002_infrastructure::Migration),
            Box::new(m20261122_000003_leases::Migration),
            Box::new(m20261123_000004_resources::Migration),
            Box::new(m20261124_000005_refused_purchases::Migration),
            Box::new(m20261124_000006_subscriptions::Migration),
            Box::new(m20261124_000007_audit::Migration),
            Box::new(m20261125_000008_placement::Migration),
            Box::new(m20261126_000009_moves::Migration),
            Box::new(m20261127_000010_mail_outbox::Migration),
            Box::new(m20261128_000011_mail_given_up::Migration),
        ]
    }
}
