//! Paid purchases Landlord could not turn into a tenant (invalid checkout metadata, a subdomain already
//! taken), kept until an operator settles them with the customer. One row per purchase: the tenant id the
//! purchase would have made.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RefusedPurchases {
    Table,
    TenantId,
    CommandId,
    Code,
    Reason,
    CheckoutSession,
    Customer,
    ContactEmail,
    Subdomain,
    RefusedAt,
    DismissedAt,
    DismissedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(RefusedPurchases::Table)
                .if_not_exists()
                .col(string_len(RefusedPurchases::TenantId, 36).primary_key())
                .col(string_len(RefusedPurchases::CommandId, 128))
                .col(string_len(RefusedPurchases::Code, 32))
                .col(text(RefusedPurchases::Reason))
                .col(string_len_null(RefusedPurchases::CheckoutSession, 255))
                .col(string_len_null(RefusedPurchases::Customer, 255))
                .col(string_len_null(RefusedPurchases::ContactEmail, 254))
                .col(string_len_null(RefusedPurchases::Subdomain, 64))
                .col(timestamp_with_time_zone(RefusedPurchases::RefusedAt))
                .col(timestamp_with_time_zone_null(RefusedPurchases::DismissedAt))
                .col(string_len_null(RefusedPurchases::DismissedBy, 100))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(RefusedPurchases::Table).if_exists().to_owned()).await
    }
}
