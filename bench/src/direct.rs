//! The baseline: the database work of a provisioning as a person does it by hand over the same driver,
//! with no Landlord around it: create the database and its login, grant, then connect as the login and
//! run the plan's script (the product's plan 10/10). The administrator's connection is kept open, as
//! Landlord's is.
//!
//! Landlord does more database work than this, and the overhead figures include it: it checks whether
//! the database and login exist and whom they belong to (a retry must not take over someone else's),
//! sets the login's connection limit and password as a verifier, looks for the schema marker and writes
//! it (a table and a row: a script is applied once), and on MariaDB reads `information_schema` for
//! tables an interrupted attempt left.

use landlord_tests::{Engine, tenant_db_url};
use landlord_worker::scripts::{Dialect, split};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, TransactionTrait};

/// A client doing provisionings by hand.
pub struct Direct {
    admin: DatabaseConnection,
    engine: Engine,
    statements: Vec<String>,
    /// The plan's script as a file, for the database's own client.
    script: std::path::PathBuf,
}

impl Direct {
    pub async fn connect(engine: Engine) -> anyhow::Result<Self> {
        let admin = Database::connect(tenant_db_url(engine)).await?;
        let (dir, dialect) = match engine {
            Engine::MariaDb => ("mysql", Dialect::MySql),
            Engine::Postgres => ("postgres", Dialect::Postgres),
        };
        let path = landlord_tests::repo_root().join("sql-scripts").join(dir).join("package-10-type-10.sql");
        let text = std::fs::read_to_string(&path)?;
        let statements = split(&text, dialect)?.into_iter().map(|s| s.sql).collect();
        Ok(Self { admin, engine, statements, script: path })
    }

    /// The same work with the database's own command-line client, as the issue's by-hand figure was
    /// taken and as a person or a shell script does it: one `mariadb` (or `psql`) call as the
    /// administrator to create the database and login and grant, one as the login with the plan's
    /// script. Each call starts a client process and connects anew, which the driver baseline does not.
    pub async fn provision_with_client(&self, name: &str) -> anyhow::Result<()> {
        let password = "Bench-client-password-1";
        let admin = url::Url::parse(&tenant_db_url(self.engine))?;
        let host = admin.host_str().unwrap_or("127.0.0.1").to_owned();
        match self.engine {
            Engine::MariaDb => {
                let port = admin.port().unwrap_or(3306).to_string();
                let grant_pattern = name.replace('_', "\\_");
                let sql = format!(
                    "CREATE DATABASE `{name}` CHARACTER SET utf8mb4; \
                     CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'; \
                     GRANT ALL PRIVILEGES ON `{grant_pattern}`.* TO '{name}'@'%';"
                );
                let mut as_admin = tokio::process::Command::new("mariadb");
                as_admin.args(["--protocol=tcp", "-h", &host, "-P", &port, "-u", admin.username(), "-e", &sql]);
                if let Some(pw) = admin.password() {
                    as_admin.env("MYSQL_PWD", pw);
                }
                run(as_admin).await?;
                let mut as_login = tokio::process::Command::new("mariadb");
                as_login.args(["--protocol=tcp", "-h", &host, "-P", &port, "-u", name, name]);
                as_login.env("MYSQL_PWD", password).stdin(std::fs::File::open(&self.script)?);
                run(as_login).await
            }
            Engine::Postgres => {
                let port = admin.port().unwrap_or(5432).to_string();
                let database = admin.path().trim_start_matches('/');
                let database = if database.is_empty() { "postgres" } else { database };
                // Each -c is its own transaction: CREATE DATABASE cannot run inside one.
                let mut as_admin = tokio::process::Command::new("psql");
                as_admin.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", &host, "-p", &port]);
                as_admin.args(["-U", admin.username(), "-d", database]);
                as_admin.args(["-c", &format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'")]);
                as_admin.args(["-c", &format!("CREATE DATABASE {name} OWNER {name}")]);
                as_admin.args(["-c", &format!("REVOKE CONNECT, TEMPORARY ON DATABASE {name} FROM PUBLIC")]);
                if let Some(pw) = admin.password() {
                    as_admin.env("PGPASSWORD", pw);
                }
                run(as_admin).await?;
                // The script in one transaction (-1, which applies to -f, not to standard input), as Landlord
                // runs it on PostgreSQL.
                let mut as_login = tokio::process::Command::new("psql");
                as_login.args(["-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-h", &host, "-p", &port]);
                as_login.args(["-U", name, "-d", name]).arg("-f").arg(&self.script).env("PGPASSWORD", password);
                run(as_login).await
            }
        }
    }

    /// Provisions database and login `name` (a bench name: `tenant_bench_…`).
    pub async fn provision(&self, name: &str) -> anyhow::Result<()> {
        let password = "Bench-direct-password-1";
        let mut url = url::Url::parse(&tenant_db_url(self.engine))?;
        url.set_username(name).map_err(|()| anyhow::anyhow!("username"))?;
        url.set_password(Some(password)).map_err(|()| anyhow::anyhow!("password"))?;
        url.set_path(&format!("/{name}"));
        match self.engine {
            Engine::MariaDb => {
                self.admin.execute_unprepared(&format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4")).await?;
                self.admin.execute_unprepared(&format!("CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'")).await?;
                let grant_pattern = name.replace('_', "\\_");
                self.admin
                    .execute_unprepared(&format!("GRANT ALL PRIVILEGES ON `{grant_pattern}`.* TO '{name}'@'%'"))
                    .await?;
            }
            Engine::Postgres => {
                self.admin.execute_unprepared(&format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'")).await?;
                self.admin.execute_unprepared(&format!("CREATE DATABASE {name} OWNER {name}")).await?;
                self.admin
                    .execute_unprepared(&format!("REVOKE CONNECT, TEMPORARY ON DATABASE {name} FROM PUBLIC"))
                    .await?;
            }
        }
        // As Landlord does: connected as the login; on PostgreSQL the script in one transaction (MariaDB
        // commits each DDL statement on its own, and Landlord sends them one by one).
        let tenant = Database::connect(url.as_str()).await?;
        match self.engine {
            Engine::Postgres => {
                let tx = tenant.begin().await?;
                for sql in &self.statements {
                    tx.execute_unprepared(sql).await?;
                }
                tx.commit().await?;
            }
            Engine::MariaDb => {
                for sql in &self.statements {
                    tenant.execute_unprepared(sql).await?;
                }
            }
        }
        tenant.close().await?;
        Ok(())
    }
}

/// Runs a client to its end; its output is not wanted, its failure is an error with what it said.
async fn run(mut command: tokio::process::Command) -> anyhow::Result<()> {
    let out = command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).output().await?;
    // The program's name only: its arguments and environment hold passwords.
    let program = command.as_std().get_program().to_string_lossy().into_owned();
    anyhow::ensure!(out.status.success(), "{program}: {}", String::from_utf8_lossy(&out.stderr).trim());
    Ok(())
}

/// Drops every database and login whose name starts with `tenant_bench` (Landlord's and the baseline's
/// from the benchmarks), so runs do not pile up on the machine's servers.
pub async fn drop_bench_databases(engine: Engine) {
    let Ok(admin) = Database::connect(tenant_db_url(engine)).await else { return };
    let names = |sql: &'static str| {
        let admin = &admin;
        async move {
            let rows = admin.query_all_raw(sea_orm::Statement::from_string(admin.get_database_backend(), sql)).await;
            rows.unwrap_or_default().iter().filter_map(|r| r.try_get_by_index::<String>(0).ok()).collect::<Vec<_>>()
        }
    };
    match engine {
        Engine::MariaDb => {
            for db in
                names(r"SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'tenant\_bench%'")
                    .await
            {
                admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS `{db}`")).await.ok();
            }
            for user in names(r"SELECT user FROM mysql.user WHERE user LIKE 'tenant\_bench%'").await {
                admin.execute_unprepared(&format!("DROP USER IF EXISTS '{user}'@'%'")).await.ok();
            }
        }
        Engine::Postgres => {
            for db in names(r"SELECT datname::text FROM pg_database WHERE datname LIKE 'tenant\_bench%'").await {
                admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await.ok();
            }
            for role in names(r"SELECT rolname::text FROM pg_roles WHERE rolname LIKE 'tenant\_bench%'").await {
                admin.execute_unprepared(&format!("DROP ROLE IF EXISTS {role}")).await.ok();
            }
        }
    }
    admin.close().await.ok();
}
