//! What the infrastructure steps record on a tenant: its hostnames, whether DNS is still pending, the
//! stack's id and outputs, and why a stack failed.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Hostname,
    ApiHostname,
    DnsPending,
    StackId,
    StackOutputs,
    StackFailure,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        let columns = [
            string_len_null(Tenants::Hostname, 255),
            string_len_null(Tenants::ApiHostname, 255),
            boolean(Tenants::DnsPending).default(false).to_owned(),
            string_len_null(Tenants::StackId, 512),
            text_null(Tenants::StackOutputs),
            text_null(Tenants::StackFailure),
        ];
        for mut column in columns {
            m.alter_table(Table::alter().table(Tenants::Table).add_column(&mut column).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Tenants::Hostname,
            Tenants::ApiHostname,
            Tenants::DnsPending,
            Tenants::StackId,
            Tenants::StackOutputs,
            Tenants::StackFailure,
        ] {
            m.alter_table(Table::alter().table(Tenants::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
