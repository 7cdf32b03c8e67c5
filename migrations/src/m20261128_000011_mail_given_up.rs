//! A message the sender gave up on (a refusal that cannot clear, or too many attempts) is marked with
//! when, instead of being pushed far into the future: SQLite keeps timestamps as text, and a far-future
//! year (`+262143-…`) sorts before every real one, so it came due again at once, forever.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MailOutbox {
    Table,
    GivenUpAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let mut column = timestamp_with_time_zone_null(MailOutbox::GivenUpAt);
        m.alter_table(Table::alter().table(MailOutbox::Table).add_column(&mut column).to_owned()).await?;
        // Messages the previous version gave up on, marked by that far-future time.
        let sql = match m.get_database_backend() {
            sea_orm_migration::sea_orm::DbBackend::Sqlite => {
                "UPDATE mail_outbox SET given_up_at = created_at WHERE sent_at IS NULL AND next_attempt_at LIKE '+%'"
            }
            _ => {
                "UPDATE mail_outbox SET given_up_at = created_at WHERE sent_at IS NULL AND next_attempt_at > '9999-01-01'"
            }
        };
        m.get_connection().execute_unprepared(sql).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(MailOutbox::Table).drop_column(MailOutbox::GivenUpAt).to_owned()).await
    }
}
