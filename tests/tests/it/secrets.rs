//! Tenant secrets: the login's password never reaches a log line, at any level, from Landlord or its
//! libraries (sqlx's statement log and sea-orm's connect span included); it is encrypted at rest under
//! rotatable keys; the SQLite control plane is private to its owner.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use landlord_protocol::{TenantId, TenantStatus};
use landlord_tests::{Engine, TestApp, checkout_event, plan_metadata, unique_slug};
use secrecy::ExposeSecret;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_passwords_never_reach_the_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("this test installs the process's only subscriber");

    let mut passwords = Vec::new();
    for engine in [Engine::MariaDb, Engine::Postgres] {
        let app = TestApp::spawn(engine).await;
        let slug = unique_slug("logs");
        let tenant = app.buy(&slug, 30).await;
        app.wait_for_status(&tenant, TenantStatus::Active).await;
        passwords.push(app.tenant_password(&tenant).await.expose_secret().to_owned());
        app.drop_tenant_db(&slug).await;
    }

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("schema statement applied"), "the capture saw the run's logs");
    assert!(logs.contains("step succeeded"));
    for password in passwords {
        assert_eq!(password.len(), 32);
        let leaks: Vec<&str> = logs.lines().filter(|l| l.contains(&password)).take(3).collect();
        assert!(leaks.is_empty(), "a tenant password was logged: {leaks:#?}");
    }
}

/// Tenant passwords are encrypted at rest under the first key; after a new key is put first, `rotate`
/// re-encrypts them under it (and encrypts any stored before encryption existed), after which the old
/// key can be dropped. A value copied onto another tenant's row does not decrypt there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_are_encrypted_at_rest_and_rotate_to_a_new_key() {
    use landlord_worker::{secret_box::SecretKeys, store::Store};
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    let app = TestApp::spawn(Engine::MariaDb).await;
    let (slug, other_slug) = (unique_slug("rotate"), unique_slug("rotate"));
    let mut tenants = Vec::new();
    for s in [&slug, &other_slug] {
        let session = format!("cs_test_{s}");
        let body = checkout_event(&format!("evt_{}", s.replace('-', "_")), &session, plan_metadata(s, 10, 10));
        assert_eq!(app.post_signed(body).await.status(), 200);
        let tenant = TenantId::from_checkout_session(&session);
        app.wait_for_status(&tenant, TenantStatus::Active).await;
        tenants.push(tenant);
    }
    let (tenant, other) = (tenants[0], tenants[1]);
    let password = app.tenant_password(&tenant).await;
    let stored = app.store.tenant(&tenant).await.unwrap().unwrap().db_password.unwrap();
    assert!(stored.starts_with("v1:test:") && !stored.contains(password.expose_secret()), "{stored}");

    // The other tenant's row holds a value from before encryption at rest.
    let legacy = "Legacy0PlainPassword0000000000000";
    let db = app.store.connection();
    let set = |id: TenantId, value: &str| {
        Statement::from_sql_and_values(
            db.get_database_backend(),
            "UPDATE tenants SET db_password = ? WHERE id = ?",
            [value.into(), id.to_string().into()],
        )
    };
    assert_eq!(db.get_database_backend(), DbBackend::Sqlite);
    db.execute_raw(set(other, legacy)).await.unwrap();

    let new_entry = SecretKeys::generate_entry("k2");
    let both = format!("{},{}", new_entry.expose_secret(), app.secret_keys.expose_secret());
    let rotated_store = app.store.clone().with_secrets(SecretKeys::parse(&both.into()).unwrap());
    let done = rotated_store.rotate_secrets().await.unwrap();
    // Both tenants' passwords and the default database server's admin URL.
    assert_eq!((done.rewritten, done.current), (3, 0));
    let server = rotated_store.server_named("default").await.unwrap().unwrap();
    assert!(server.admin_url.as_deref().unwrap_or_default().starts_with("v1:k2:"), "{server:?}");
    assert_eq!(rotated_store.rotate_secrets().await.unwrap().rewritten, 0, "a second rotation has nothing to do");

    // The old key can go: the new one alone reads both.
    let new_only: Store = app.store.clone().with_secrets(SecretKeys::parse(&new_entry).unwrap());
    let read = new_only.database_password(&tenant).await.unwrap().unwrap();
    assert_eq!(read.expose_secret(), password.expose_secret());
    assert_eq!(new_only.database_password(&other).await.unwrap().unwrap().expose_secret(), legacy);
    let stored = new_only.tenant(&tenant).await.unwrap().unwrap().db_password.unwrap();
    assert!(stored.starts_with("v1:k2:"), "{stored}");

    // A value copied onto another tenant's row is refused there.
    db.execute_raw(set(other, &stored)).await.unwrap();
    let err = new_only.database_password(&other).await.unwrap_err().to_string();
    assert!(err.contains("does not decrypt"), "{err}");
    app.drop_tenant_db(&slug).await;
    app.drop_tenant_db(&other_slug).await;
}

/// The SQLite control plane is created readable by its owner only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_control_plane_is_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("landlord.db");
    landlord_worker::store::Store::connect(&format!("sqlite://{}?mode=rwc", path.display())).await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "control plane file mode {mode:o}");

    // A file an earlier version left readable by everyone is narrowed to its owner.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    landlord_worker::store::Store::connect(&format!("sqlite://{}?mode=rwc", path.display())).await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "an existing control plane file is narrowed: {mode:o}");
}

/// Without `LANDLORD_SECRET_KEYS` a worker does not start (only `landlord dev` makes a key for itself),
/// and the error says how to make one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_secret_keys_refuses_to_start() {
    let app = TestApp::spawn_with(landlord_tests::Options {
        in_process_worker: false,
        ..landlord_tests::Options::new(Engine::MariaDb)
    })
    .await;
    let mut cfg = app.worker_config.clone();
    cfg.secret_keys = None;
    let err = landlord_worker::build(&cfg, &app.bus, None).await.unwrap_err().to_string();
    assert!(err.contains("LANDLORD_SECRET_KEYS") && err.contains("landlord secrets generate-key"), "{err}");
    cfg.secret_keys = Some("k1:not-a-key".to_owned().into());
    let err = landlord_worker::build(&cfg, &app.bus, None).await.unwrap_err().to_string();
    assert!(err.contains("LANDLORD_SECRET_KEYS entry 1"), "{err}");
    assert!(!err.contains("not-a-key"), "key material is never repeated: {err}");
}
