//! Moving a tenant's database to another server (a plan change across placement): the server it is
//! moving to, with its place already taken there; whether the copy there was started by Landlord (so a
//! resumed copy may replace a half-restored one and nothing else); and, once switched, the server whose
//! old copy is still to be dropped, which keeps its place until then.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    MovingTo,
    MoveCopyStarted,
    MovedFrom,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for mut column in [
            string_len_null(Tenants::MovingTo, 36),
            boolean(Tenants::MoveCopyStarted).default(false).to_owned(),
            string_len_null(Tenants::MovedFrom, 36),
        ] {
            m.alter_table(Table::alter().table(Tenants::Table).add_column(&mut column).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [Tenants::MovingTo, Tenants::MoveCopyStarted, Tenants::MovedFrom] {
            m.alter_table(Table::alter().table(Tenants::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
