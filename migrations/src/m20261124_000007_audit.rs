//! The audit log: every command that asks for a change, once, with who asked (an admin token's name,
//! `stripe:<event id>`, Landlord itself, or whatever a NATS publisher wrote), what, for which tenant and
//! when. Rows are never updated; retention does not prune them.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    CommandId,
    At,
    Actor,
    Action,
    TenantId,
    Detail,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .if_not_exists()
                .col(string_len(AuditLog::CommandId, 160).primary_key())
                .col(timestamp_with_time_zone(AuditLog::At))
                .col(string_len(AuditLog::Actor, 200))
                .col(string_len(AuditLog::Action, 32))
                .col(string_len(AuditLog::TenantId, 36))
                .col(text_null(AuditLog::Detail))
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("audit_log_at").table(AuditLog::Table).col(AuditLog::At).to_owned())
            .await?;
        m.create_index(
            Index::create().name("audit_log_tenant").table(AuditLog::Table).col(AuditLog::TenantId).to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(AuditLog::Table).if_exists().to_owned()).await
    }
}
