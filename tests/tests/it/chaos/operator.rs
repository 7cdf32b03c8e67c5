//! A tenant waiting for an operator survives its worker: the worker that paused it is SIGKILLed while it
//! waits, a new worker reminds operators on schedule (the reminder timer lives in the control plane), and
//! the operator's hand-over is carried out by that second worker.

use std::time::Duration;

use futures::StreamExt;
use landlord_protocol::EventKind;
use landlord_tests::{
    ADMIN_TOKEN, Engine, Options, TestApp,
    chaos::{MariaDbServer, WorkerProcess, drop_database, eventually, fresh_postgres_database},
    tenant_db_url, unique_slug,
};

use super::harness::{log, purchase, worker_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_is_carried_out_by_a_new_worker_after_the_first_was_killed_while_waiting() {
    let (control_plane, cp_name) = fresh_postgres_database("chaosoperator").await;
    let opts = Options {
        in_process_worker: false,
        control_plane: Some(control_plane.clone()),
        ..Options::new(Engine::MariaDb)
    };
    let app = TestApp::spawn_with(opts).await;
    let logs = super::harness::log_dir("operator");
    let extra = [("LANDLORD_OPERATOR_REMINDER", "3s".to_owned()), ("LANDLORD_TIMER_INTERVAL_SECS", "1".to_owned())];
    let env = worker_env(&app, &control_plane, &tenant_db_url(Engine::MariaDb), &extra);
    let own = MariaDbServer::start();

    let mut first = WorkerProcess::spawn(&env, log(&logs, "first"));
    let p = purchase(&unique_slug("oper"), 40);
    assert_eq!(app.post_signed(p.body.clone()).await.status(), 200);
    eventually(Duration::from_secs(60), "the dedicated tenant waiting for an operator", || async {
        app.store.tenant(&p.tenant).await.unwrap().is_some_and(|t| t.status == "awaiting_operator")
    })
    .await;
    first.kill();
    let killed_at = chrono::Utc::now();

    // Nobody reminds anyone while no worker runs; the new worker does, from the time in the control plane.
    let _second = WorkerProcess::spawn(&env, log(&logs, "second"));
    let mut progress = Box::pin(app.bus.progress(Some(&p.tenant)).await.unwrap());
    let reminder = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(ev) = progress.next().await {
            if ev.kind == EventKind::OperatorReminder && ev.at > killed_at {
                return ev;
            }
        }
        panic!("the progress stream ended");
    })
    .await
    .expect("a reminder after the restart");
    let text = reminder.message.unwrap_or_default();
    assert!(text.contains("dedicated") && text.contains(&p.slug), "{text}");
    // Recorded right after it is sent.
    eventually(Duration::from_secs(10), "the reminder recorded", || async {
        let row = app.store.tenant(&p.tenant).await.unwrap().unwrap();
        row.operator_reminded_at > row.awaiting_since
    })
    .await;

    let res = app
        .http
        .post(format!("{}/v1/tenants/{}/database", app.base_url, p.tenant))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "admin_url": own.url }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap_or_default());
    eventually(Duration::from_secs(60), "the tenant active on its own server", || async {
        app.store.tenant(&p.tenant).await.unwrap().is_some_and(|t| t.status == "active")
    })
    .await;
    let runs = app.store.runs(&p.tenant).await.unwrap();
    let statuses: Vec<&str> = runs.iter().map(|r| r.status.as_str()).collect();
    assert!(statuses.contains(&"waiting") && statuses.contains(&"succeeded"), "{statuses:?}");
    println!(
        "chaos operator: paused, worker killed, reminded after restart, handed over, active ({} runs)",
        runs.len()
    );
    drop_database(&cp_name).await;
}
