//! `landlord watch TENANT` as a script uses it: it follows the tenant's steps and answers with its exit
//! code, 0 once active, 1 when it failed (with the reason), 2 when it waits for an operator; a tenant that
//! is already settled answers at once, from the control plane when its events are no longer kept; NATS out
//! of reach, or not a tenant id, is 3.

use std::time::Duration;

use landlord_protocol::{TenantId, TenantStatus};
use landlord_tests::{Engine, TestApp, chaos::workspace_bin, unique_slug};

async fn watch(app: &TestApp, tenant: &TenantId) -> (i32, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::new(workspace_bin("landlord"))
            .args(["watch", &tenant.to_string(), "--plain"])
            .env("LANDLORD_NATS_URL", &app.nats_url)
            .env("LANDLORD_LOG", "warn")
            .output(),
    )
    .await
    .expect("watch ends by itself")
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_answers_with_the_tenants_fate() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let good_slug = unique_slug("watch");
    let good = app.buy(&good_slug, 10).await;
    // Started at once: it follows the provisioning live to the end.
    let (code, stdout, _) = watch(&app, &good).await;
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("create_database") && stdout.contains("is active"), "{stdout}");
    // Again, now that it is settled: it answers from history at once.
    assert_eq!(watch(&app, &good).await.0, 0);

    let broken_slug = unique_slug("watchbad");
    let broken = app.buy(&broken_slug, 8).await;
    app.wait_for_status(&broken, TenantStatus::Failed).await;
    let (code, _, stderr) = watch(&app, &broken).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("failed"), "with the reason: {stderr}");

    let waiting = app.buy(&unique_slug("watchops"), 40).await;
    let (code, _, stderr) = watch(&app, &waiting).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("dedicated"), "{stderr}");

    let out = tokio::process::Command::new(workspace_bin("landlord"))
        .args(["watch", &good.to_string(), "--plain"])
        .env("LANDLORD_NATS_URL", "nats://127.0.0.1:1")
        .env("LANDLORD_LOG", "off")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    app.drop_tenant_db(&good_slug).await;
    app.drop_tenant_db(&broken_slug).await;
}

/// A tenant whose events are past the stream's retention still gets its answer (from the control plane),
/// rather than a watch that waits for ever; a tenant nobody has bought yet is waited for, saying so; a
/// text that is not a tenant id is 3, not 1 (which says "failed").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_answers_without_history_and_waits_only_for_what_may_come() {
    use secrecy::ExposeSecret;
    let app = TestApp::spawn(Engine::MariaDb).await;
    let slug = unique_slug("watchold");
    let tenant = app.buy(&slug, 10).await;
    app.wait_for_status(&tenant, TenantStatus::Active).await;
    let broken_slug = unique_slug("watcholdbad");
    let broken = app.buy(&broken_slug, 8).await;
    app.wait_for_status(&broken, TenantStatus::Failed).await;
    // As if 30 days had passed: the stream keeps none of their events...
    let stream = app.bus.jetstream().get_stream(landlord_protocol::subjects::PROGRESS_STREAM).await.unwrap();
    for id in [&tenant, &broken] {
        stream.purge().filter(landlord_protocol::subjects::progress_subject(Some(id))).await.unwrap();
    }
    // ...but for a later one that settles nothing (a reminder, a DNS record confirmed late).
    let later =
        landlord_protocol::ProgressEvent::new(Some(tenant), None, landlord_protocol::EventKind::OperatorReminder);
    app.bus.publish_progress(&later).await.unwrap();
    let control_plane = app.worker_config.database_url.expose_secret().to_owned();
    let watch_with_control_plane = |id: String| {
        tokio::process::Command::new(workspace_bin("landlord"))
            .args(["watch", &id, "--plain"])
            .env("LANDLORD_NATS_URL", &app.nats_url)
            .env("LANDLORD_DATABASE_URL", &control_plane)
            .env("LANDLORD_LOG", "warn")
            .kill_on_drop(true)
            .output()
    };
    let out = tokio::time::timeout(Duration::from_secs(60), watch_with_control_plane(tenant.to_string()))
        .await
        .expect("a watch of a settled tenant ends by itself")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("is active"), "{stdout}");
    let out = tokio::time::timeout(Duration::from_secs(60), watch_with_control_plane(broken.to_string()))
        .await
        .expect("a watch of a failed tenant ends by itself")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // With the reason the control plane kept, not just the status.
    assert!(stderr.contains("failed: ") && !stderr.contains("the tenant is failed"), "{stderr}");

    // Nobody has bought this one (yet): the watch waits for its first event, and says so.
    let unknown = TenantId::new_random();
    let mut child = tokio::process::Command::new(workspace_bin("landlord"))
        .args(["watch", &unknown.to_string(), "--plain"])
        .env("LANDLORD_NATS_URL", &app.nats_url)
        .env("LANDLORD_DATABASE_URL", &control_plane)
        .env("LANDLORD_LOG", "warn")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stderr.take().unwrap()));
    let said = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if line.contains("no event of tenant") {
                return line;
            }
        }
        panic!("the watch ended without saying what it waits for")
    })
    .await
    .expect("the watch says what it waits for");
    assert!(said.contains("waiting"), "{said}");
    assert!(child.try_wait().unwrap().is_none(), "still waiting");
    child.kill().await.unwrap();

    let out = tokio::time::timeout(Duration::from_secs(60), watch_with_control_plane("not-a-tenant".into()))
        .await
        .expect("ends")
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a tenant id"));
    app.drop_tenant_db(&slug).await;
    app.drop_tenant_db(&broken_slug).await;
}

/// `landlord watch TENANT --plain`, running in the background.
fn spawn_watch(app: &TestApp, tenant: &TenantId) -> tokio::task::JoinHandle<std::process::Output> {
    let command = tokio::process::Command::new(workspace_bin("landlord"))
        .args(["watch", &tenant.to_string(), "--plain"])
        .env("LANDLORD_NATS_URL", &app.nats_url)
        .env("LANDLORD_LOG", "warn")
        .output();
    tokio::spawn(async move { command.await.unwrap() })
}

/// `landlord tenants resume X && landlord watch X`: the history still ends "suspended" when the watch
/// starts, but the resume waits in the queue, so the watch follows it to `active` instead of answering
/// "suspended" at once. A command that leaves the queue changing nothing ends the watch with the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_after_a_command_follows_that_command() {
    use landlord_protocol::{Action, Command, CommandId};
    let app = TestApp::spawn_with(landlord_tests::Options {
        in_process_worker: false,
        ..landlord_tests::Options::new(Engine::MariaDb)
    })
    .await;
    let worker = landlord_worker::build(&app.worker_config, &app.bus, None).await.unwrap();
    let consumer = landlord_worker::consumer::ensure_consumer(&app.bus, Duration::from_secs(30)).await.unwrap();
    // Handles the next queued command, as a worker's consumer would.
    let handle_next = || async {
        use futures::StreamExt;
        let mut batch = consumer.fetch().max_messages(1).expires(Duration::from_secs(10)).messages().await.unwrap();
        let msg = batch.next().await.expect("a queued command").unwrap();
        worker.handle_message(msg).await
    };
    let ask = |tenant: TenantId, action: Action| {
        let id = CommandId::parse(&format!("admin:{}", uuid::Uuid::new_v4())).unwrap();
        let bus = app.bus.clone();
        async move { bus.publish_command(&Command::new(id, tenant, "ops-test", action)).await.unwrap() }
    };
    let slug = unique_slug("watchcmd");
    let tenant = app.buy(&slug, 10).await;
    handle_next().await;
    app.wait_for_status(&tenant, TenantStatus::Active).await;
    ask(tenant, Action::Suspend).await;
    handle_next().await;
    app.wait_for_status(&tenant, TenantStatus::Suspended).await;

    ask(tenant, Action::Resume).await;
    let watching = spawn_watch(&app, &tenant);
    // The watch has read the history (suspended) and sees the resume waiting: it keeps watching.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!watching.is_finished(), "the watch did not answer from the history while a resume waits");
    handle_next().await;
    let out = tokio::time::timeout(Duration::from_secs(60), watching).await.expect("the watch ends").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("is active"), "{stdout}");

    // A repeated resume changes nothing: once it has left the queue, the watch answers from the history.
    ask(tenant, Action::Resume).await;
    let watching = spawn_watch(&app, &tenant);
    tokio::time::sleep(Duration::from_secs(2)).await;
    handle_next().await;
    let out = tokio::time::timeout(Duration::from_secs(60), watching).await.expect("the watch ends").unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    app.drop_tenant_db(&slug).await;
}
