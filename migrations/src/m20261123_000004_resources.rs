//! What Landlord created, by kind and name, and for which tenant: a database, a login, a DNS record, a
//! stack. A resource is claimed here before it is created, so a resource that exists without a claim
//! was made by someone else and is never adopted, changed or deleted. Tenants provisioned before this
//! table existed get claims for what their rows record.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(Debug, DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TenantResources {
    Table,
    Kind,
    Name,
    TenantId,
    ClaimedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(TenantResources::Table)
                .if_not_exists()
                .col(string_len(TenantResources::Kind, 32))
                .col(string_len(TenantResources::Name, 512))
                .col(string_len(TenantResources::TenantId, 36))
                .col(timestamp_with_time_zone(TenantResources::ClaimedAt))
                .primary_key(Index::create().col(TenantResources::Kind).col(TenantResources::Name))
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        for (kind, column) in
            [("database", "db_name"), ("login", "db_login"), ("dns_record", "hostname"), ("dns_record", "api_hostname")]
        {
            db.execute_unprepared(&format!(
                "INSERT INTO tenant_resources (kind, name, tenant_id, claimed_at) \
                 SELECT '{kind}', {column}, id, updated_at FROM tenants WHERE {column} IS NOT NULL AND {column} <> ''"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(TenantResources::Table).if_exists().to_owned()).await
    }
}
