//! Mail waiting to be sent: the welcome a tenant's customer gets once it is active, and notices to
//! operators (a tenant waits for one). A step or a timer writes the message here, once (its id is made
//! from what it is about), and a worker's sender delivers it over SMTP, retrying with backoff, so a mail
//! server that is down never fails or delays a tenant.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MailOutbox {
    Table,
    Id,
    Kind,
    TenantId,
    Recipient,
    Subject,
    Body,
    CreatedAt,
    Attempts,
    NextAttemptAt,
    SentAt,
    LastError,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(MailOutbox::Table)
                .if_not_exists()
                .col(string_len(MailOutbox::Id, 36).primary_key())
                // `welcome` or `operator`.
                .col(string_len(MailOutbox::Kind, 16))
                .col(string_len_null(MailOutbox::TenantId, 36))
                .col(string_len(MailOutbox::Recipient, 320))
                .col(text(MailOutbox::Subject))
                .col(text(MailOutbox::Body))
                .col(timestamp_with_time_zone(MailOutbox::CreatedAt))
                .col(integer(MailOutbox::Attempts).default(0))
                .col(timestamp_with_time_zone(MailOutbox::NextAttemptAt))
                .col(timestamp_with_time_zone_null(MailOutbox::SentAt))
                .col(text_null(MailOutbox::LastError))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("mail_outbox_due")
                .table(MailOutbox::Table)
                .col(MailOutbox::SentAt)
                .col(MailOutbox::NextAttemptAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(MailOutbox::Table).if_exists().to_owned()).await
    }
}
