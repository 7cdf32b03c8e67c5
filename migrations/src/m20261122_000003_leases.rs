//! One lease per tenant: which worker may run it, until when. Taken and renewed by compare-and-set
//! (conditional UPDATE, or INSERT when there is none), so two workers never run one tenant at once.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TenantLeases {
    Table,
    TenantId,
    Holder,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(TenantLeases::Table)
                .if_not_exists()
                .col(string_len(TenantLeases::TenantId, 36).primary_key())
                .col(string_len(TenantLeases::Holder, 128))
                .col(timestamp_with_time_zone(TenantLeases::ExpiresAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(TenantLeases::Table).if_exists().to_owned()).await
    }
}
