//! Tenants, their provisioning runs and steps, and the commands already processed.
//!
//! `tenant_steps` holds the latest outcome of each step per tenant: it is what makes a resumed run start
//! at the unfinished steps. `processed_commands` remembers command ids far longer than JetStream's
//! duplicate window, so a Stripe retry days later is a no-op.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Slug,
    StoreName,
    ContactEmail,
    PackageId,
    SubscriptionTypeId,
    Status,
    LastError,
    DbEngine,
    DbName,
    DbLogin,
    DbPassword,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    Id,
    TenantId,
    CommandId,
    Kind,
    Status,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum TenantSteps {
    Table,
    TenantId,
    Step,
    RunId,
    Status,
    Attempts,
    StartedAt,
    FinishedAt,
    DurationMs,
    ErrorCode,
    ErrorMessage,
}

#[derive(DeriveIden)]
enum ProcessedCommands {
    Table,
    CommandId,
    TenantId,
    Kind,
    ProcessedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Tenants::Table)
                .if_not_exists()
                .col(string_len(Tenants::Id, 36).primary_key())
                .col(string_len_uniq(Tenants::Slug, 63))
                .col(string_len(Tenants::StoreName, 200))
                .col(string_len(Tenants::ContactEmail, 254))
                .col(integer(Tenants::PackageId))
                .col(integer(Tenants::SubscriptionTypeId))
                .col(string_len(Tenants::Status, 32))
                .col(text_null(Tenants::LastError))
                .col(string_len_null(Tenants::DbEngine, 16))
                .col(string_len_null(Tenants::DbName, 64))
                .col(string_len_null(Tenants::DbLogin, 64))
                .col(string_len_null(Tenants::DbPassword, 128))
                .col(timestamp_with_time_zone(Tenants::CreatedAt))
                .col(timestamp_with_time_zone(Tenants::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Runs::Table)
                .if_not_exists()
                .col(string_len(Runs::Id, 36).primary_key())
                .col(string_len(Runs::TenantId, 36))
                .col(string_len(Runs::CommandId, 128))
                .col(string_len(Runs::Kind, 32))
                .col(string_len(Runs::Status, 32))
                .col(timestamp_with_time_zone(Runs::StartedAt))
                .col(timestamp_with_time_zone_null(Runs::FinishedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("runs_by_tenant").table(Runs::Table).col(Runs::TenantId).if_not_exists().to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(TenantSteps::Table)
                .if_not_exists()
                .col(string_len(TenantSteps::TenantId, 36))
                .col(string_len(TenantSteps::Step, 64))
                .col(string_len(TenantSteps::RunId, 36))
                .col(string_len(TenantSteps::Status, 32))
                .col(integer(TenantSteps::Attempts))
                .col(timestamp_with_time_zone(TenantSteps::StartedAt))
                .col(timestamp_with_time_zone_null(TenantSteps::FinishedAt))
                .col(big_integer_null(TenantSteps::DurationMs))
                .col(string_len_null(TenantSteps::ErrorCode, 64))
                .col(text_null(TenantSteps::ErrorMessage))
                .primary_key(Index::create().col(TenantSteps::TenantId).col(TenantSteps::Step))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ProcessedCommands::Table)
                .if_not_exists()
                .col(string_len(ProcessedCommands::CommandId, 128).primary_key())
                .col(string_len(ProcessedCommands::TenantId, 36))
                .col(string_len(ProcessedCommands::Kind, 32))
                .col(timestamp_with_time_zone(ProcessedCommands::ProcessedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            ProcessedCommands::Table.into_iden(),
            TenantSteps::Table.into_iden(),
            Runs::Table.into_iden(),
            Tenants::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
