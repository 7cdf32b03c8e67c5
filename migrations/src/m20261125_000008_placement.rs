//! Where tenant databases live: the registry of database servers (engine, encrypted admin URL, shared or
//! dedicated, capacity, how many tenants are placed, open/draining/closed), and on the tenant the server it
//! was placed on and, while it waits for a person, why and since when (with the last reminder sent).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DbServers {
    Table,
    Id,
    Name,
    Engine,
    AdminUrl,
    Address,
    Kind,
    Capacity,
    Placed,
    State,
    StackId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    DbServer,
    AwaitingReason,
    AwaitingSince,
    OperatorRemindedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(DbServers::Table)
                .if_not_exists()
                .col(string_len(DbServers::Id, 36).primary_key())
                .col(string_len(DbServers::Name, 100).unique_key())
                .col(string_len(DbServers::Engine, 16))
                // Encrypted (`secret_box`), bound to the server's id.
                .col(text_null(DbServers::AdminUrl))
                // `host:port` of the admin URL, in clear: what lists show without decrypting anything.
                .col(string_len_null(DbServers::Address, 300))
                .col(string_len(DbServers::Kind, 16))
                .col(integer(DbServers::Capacity))
                .col(integer(DbServers::Placed).default(0))
                // `creating` while a template's stack is made; then `open`, `draining` or `closed`.
                .col(string_len(DbServers::State, 16))
                .col(string_len_null(DbServers::StackId, 512))
                .col(timestamp_with_time_zone(DbServers::CreatedAt))
                .col(timestamp_with_time_zone(DbServers::UpdatedAt))
                .to_owned(),
        )
        .await?;
        let columns = [
            string_len_null(Tenants::DbServer, 36),
            text_null(Tenants::AwaitingReason),
            timestamp_with_time_zone_null(Tenants::AwaitingSince),
            timestamp_with_time_zone_null(Tenants::OperatorRemindedAt),
        ];
        for mut column in columns {
            m.alter_table(Table::alter().table(Tenants::Table).add_column(&mut column).to_owned()).await?;
        }
        m.create_index(
            Index::create().name("tenants_db_server").table(Tenants::Table).col(Tenants::DbServer).to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("tenants_db_server").table(Tenants::Table).to_owned()).await?;
        for column in [Tenants::DbServer, Tenants::AwaitingReason, Tenants::AwaitingSince, Tenants::OperatorRemindedAt]
        {
            m.alter_table(Table::alter().table(Tenants::Table).drop_column(column).to_owned()).await?;
        }
        m.drop_table(Table::drop().table(DbServers::Table).if_exists().to_owned()).await
    }
}
