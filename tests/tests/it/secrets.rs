//! The tenant login's password never reaches a log line, at any level, from Landlord or its libraries
//! (sqlx's statement log included, through the `log` bridge).

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use landlord_protocol::{TenantId, TenantStatus};
use landlord_tests::{Engine, TestApp, checkout_event, plan_metadata, unique_slug};

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
        let session = format!("cs_test_{slug}");
        let res = app
            .post_signed(checkout_event(
                &format!("evt_{}", slug.replace('-', "_")),
                &session,
                plan_metadata(&slug, 3, 1),
            ))
            .await;
        assert_eq!(res.status(), 200);
        let row = app.wait_for_status(&TenantId::from_checkout_session(&session), TenantStatus::Active).await;
        passwords.push(row.db_password.clone().expect("password recorded"));
        app.drop_tenant_db(&slug).await;
    }

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("schema statement applied"), "the capture saw the run's logs");
    assert!(logs.contains("step succeeded"));
    for password in passwords {
        assert_eq!(password.len(), 32);
        assert!(!logs.contains(&password), "a tenant password was logged");
    }
}
