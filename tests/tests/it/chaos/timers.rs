//! The offboarding timer of a deleted subscription lives in the control plane: a worker killed before it
//! is due fires nothing, and a new worker started after it is due offboards the tenant.

use std::time::Duration;

use landlord_tests::{
    Engine, Options, TestApp,
    chaos::{WorkerProcess, drop_database, eventually, fresh_postgres_database},
    subscription_event, subscription_purchase, tenant_db_url, unique_slug,
};
use landlord_worker::store::Store;

use super::harness::{log, worker_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offboarding_timer_survives_a_worker_restart() {
    let app = TestApp::spawn_with(Options { in_process_worker: false, ..Options::new(Engine::MariaDb) }).await;
    let (control_plane, cp_name) = fresh_postgres_database("chaostimer").await;
    let store = Store::connect(&control_plane).await.unwrap();
    let logs = super::harness::log_dir("timers");
    let extra = [("LANDLORD_OFFBOARD_AFTER", "6s".to_owned()), ("LANDLORD_TIMER_INTERVAL_SECS", "1".to_owned())];
    let env = worker_env(&app, &control_plane, &tenant_db_url(Engine::MariaDb), &extra);

    let mut first = WorkerProcess::spawn(&env, log(&logs, "first"));
    let slug = unique_slug("timer");
    let (body, tenant, sub) = subscription_purchase(&slug, 10);
    assert_eq!(app.post_signed(body).await.status(), 200);
    eventually(Duration::from_secs(60), "the tenant active", || async {
        store.tenant(&tenant).await.unwrap().is_some_and(|t| t.status == "active")
    })
    .await;
    let created = chrono::Utc::now().timestamp() - 60;
    let ended =
        subscription_event("evt_timer_ended", "customer.subscription.deleted", created, &sub, "canceled", "price_x");
    assert_eq!(app.post_signed(ended).await.status(), 200);
    eventually(Duration::from_secs(60), "the tenant suspended with its timer", || async {
        store.tenant(&tenant).await.unwrap().is_some_and(|t| t.status == "suspended" && t.offboard_at.is_some())
    })
    .await;
    first.kill();

    let due = store.tenant(&tenant).await.unwrap().unwrap().offboard_at.unwrap();
    let wait = (due - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(1);
    tokio::time::sleep(wait).await;
    assert_eq!(store.tenant(&tenant).await.unwrap().unwrap().status, "suspended", "no worker, nothing fired");

    let _second = WorkerProcess::spawn(&env, log(&logs, "second"));
    eventually(Duration::from_secs(60), "the tenant offboarded by the new worker", || async {
        store.tenant(&tenant).await.unwrap().is_some_and(|t| t.status == "deleted")
    })
    .await;
    println!("chaos timers: the offboarding timer fired after a restart, {wait:?} after the kill");
    drop(store);
    drop_database(&cp_name).await;
}
