//! Stripe subscriptions and what they decide for a tenant: each subscription's newest known snapshot
//! (status, prices, whether it was deleted, and the time of the event that showed it, so an older event
//! never overwrites a newer one), and on the tenant its subscription, its customer, the `payment_overdue`
//! flag and the durable offboarding timer (`offboard_at`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum StripeSubscriptions {
    Table,
    Id,
    Customer,
    Status,
    Prices,
    Deleted,
    EventCreated,
    EventId,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    StripeSubscription,
    StripeCustomer,
    PaymentOverdue,
    OffboardAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(StripeSubscriptions::Table)
                .if_not_exists()
                .col(string_len(StripeSubscriptions::Id, 255).primary_key())
                .col(string_len_null(StripeSubscriptions::Customer, 255))
                .col(string_len(StripeSubscriptions::Status, 32))
                .col(text(StripeSubscriptions::Prices))
                .col(boolean(StripeSubscriptions::Deleted).default(false))
                .col(timestamp_with_time_zone(StripeSubscriptions::EventCreated))
                .col(string_len(StripeSubscriptions::EventId, 255))
                .col(timestamp_with_time_zone(StripeSubscriptions::UpdatedAt))
                .to_owned(),
        )
        .await?;
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        let columns = [
            string_len_null(Tenants::StripeSubscription, 255),
            string_len_null(Tenants::StripeCustomer, 255),
            boolean(Tenants::PaymentOverdue).default(false).to_owned(),
            timestamp_with_time_zone_null(Tenants::OffboardAt),
        ];
        for mut column in columns {
            m.alter_table(Table::alter().table(Tenants::Table).add_column(&mut column).to_owned()).await?;
        }
        m.create_index(
            Index::create()
                .name("tenants_stripe_subscription")
                .table(Tenants::Table)
                .col(Tenants::StripeSubscription)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("tenants_offboard_at").table(Tenants::Table).col(Tenants::OffboardAt).to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("tenants_offboard_at").table(Tenants::Table).to_owned()).await?;
        m.drop_index(Index::drop().name("tenants_stripe_subscription").table(Tenants::Table).to_owned()).await?;
        for column in
            [Tenants::StripeSubscription, Tenants::StripeCustomer, Tenants::PaymentOverdue, Tenants::OffboardAt]
        {
            m.alter_table(Table::alter().table(Tenants::Table).drop_column(column).to_owned()).await?;
        }
        m.drop_table(Table::drop().table(StripeSubscriptions::Table).if_exists().to_owned()).await
    }
}
