//! The same purchase delivered again and again makes one tenant and one database.

use landlord_protocol::{TenantId, TenantStatus};
use landlord_tests::{Engine, TestApp, checkout_event, count_databases, plan_metadata, unique_slug};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_five_times_concurrently_makes_one_tenant() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let slug = unique_slug("dup");
    let session = format!("cs_test_{slug}");
    let body = checkout_event("evt_dup_1", &session, plan_metadata(&slug, 10, 10));
    let sends = (0..5).map(|_| app.post_signed(body.clone()));
    let answers = futures::future::join_all(sends).await;
    let mut duplicates = 0;
    for res in answers {
        assert_eq!(res.status(), 200);
        let v: serde_json::Value = res.json().await.unwrap();
        duplicates += v["duplicate"].as_bool().unwrap() as u32;
    }
    assert_eq!(duplicates, 4, "JetStream stores the command once and reports the rest as duplicates");

    let tenant = TenantId::from_checkout_session(&session);
    app.wait_for_status(&tenant, TenantStatus::Active).await;
    // A different event for the same purchase (Stripe's async payment confirmation) changes nothing.
    let mut later: serde_json::Value =
        serde_json::from_slice(&checkout_event("evt_dup_2", &session, plan_metadata(&slug, 10, 10))).unwrap();
    later["type"] = "checkout.session.async_payment_succeeded".into();
    assert_eq!(app.post_signed(serde_json::to_vec(&later).unwrap()).await.status(), 200);

    // Wait until the worker has consumed everything, then count.
    let stream = app.bus.jetstream().get_stream("LANDLORD_COMMANDS").await.unwrap();
    for _ in 0..100 {
        if stream.get_info().await.unwrap().state.messages == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(stream.get_info().await.unwrap().state.messages, 0, "every command consumed");
    let tenants = app.store.tenants().await.unwrap();
    assert_eq!(tenants.len(), 1);
    assert_eq!(tenants[0].status, "active");
    let db_prefix = format!("tenant_{}", slug.replace('-', "_"));
    assert_eq!(count_databases(&app, Engine::MariaDb, &db_prefix).await, 1);
    assert_eq!(app.store.runs(&tenant).await.unwrap().len(), 1, "one provisioning run only");
    app.drop_tenant_db(&slug).await;
}

/// A command the worker already finished, delivered again later (past JetStream's window), is a no-op.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processed_command_redelivered_is_a_no_op() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let slug = unique_slug("redeliver");
    let session = format!("cs_test_{slug}");
    let res = app.post_signed(checkout_event("evt_redeliver", &session, plan_metadata(&slug, 20, 10))).await;
    assert_eq!(res.status(), 200);
    let tenant = TenantId::from_checkout_session(&session);
    app.wait_for_status(&tenant, TenantStatus::Active).await;

    // Drive a second worker directly with the same command, as a redelivery would.
    let worker = landlord_worker::build(&app.worker_config, &app.bus, None).await.unwrap();
    let cmd = match landlord_ingress::stripe::decide(
        &checkout_event("evt_redeliver", &session, plan_metadata(&slug, 20, 10)),
        &landlord_tests::test_plans(),
    )
    .unwrap()
    {
        landlord_ingress::stripe::EventDecision::Provision(cmd) => cmd,
        other => panic!("{other:?}"),
    };
    let outcome = worker.handle(&cmd.subject(), &cmd.to_json(), 2).await;
    assert_eq!(outcome, landlord_worker::Outcome::AlreadyDone);
    assert_eq!(app.store.runs(&tenant).await.unwrap().len(), 1);
    app.drop_tenant_db(&slug).await;
}

/// Two copies of one command handled at once by the same worker process (a redelivery after ack_wait
/// while the first copy waited) run one at a time: the lease belongs to a handling, not a process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_copies_in_one_worker_do_not_run_at_once() {
    let app = landlord_tests::TestApp::spawn_with(landlord_tests::Options {
        in_process_worker: false,
        ..landlord_tests::Options::new(Engine::MariaDb)
    })
    .await;
    let slug = unique_slug("twocopies");
    let session = format!("cs_test_{slug}");
    let cmd = match landlord_ingress::stripe::decide(
        &checkout_event("evt_two_copies", &session, plan_metadata(&slug, 30, 20)),
        &landlord_tests::test_plans(),
    )
    .unwrap()
    {
        landlord_ingress::stripe::EventDecision::Provision(cmd) => cmd,
        other => panic!("{other:?}"),
    };
    let worker = landlord_worker::build(&app.worker_config, &app.bus, None).await.unwrap();
    // The tenant's lease row exists, expired, as a crashed worker leaves it: both copies now race on
    // the conditional UPDATE rather than on the first INSERT.
    assert!(app.store.acquire_lease(&cmd.tenant_id, "crashed/1", std::time::Duration::from_millis(1)).await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (subject, payload) = (cmd.subject(), cmd.to_json());
    let (a, b) = tokio::join!(worker.handle(&subject, &payload, 1), worker.handle(&subject, &payload, 2));
    // Both start at once: the first takes the lease, the second is told to come back later.
    let busy = |o: &landlord_worker::Outcome| matches!(o, landlord_worker::Outcome::Busy { .. });
    let completed = |o: &landlord_worker::Outcome| *o == landlord_worker::Outcome::Completed;
    assert!((completed(&a) && busy(&b)) || (busy(&a) && completed(&b)), "{a:?} / {b:?}");
    assert_eq!(app.store.runs(&cmd.tenant_id).await.unwrap().len(), 1, "one run");
    app.drop_tenant_db(&slug).await;
}
