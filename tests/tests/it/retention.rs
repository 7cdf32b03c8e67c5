//! Retention: processed commands and finished runs are pruned past their age, recent ones, runs still
//! going and succeeded runs are kept, and a policy that would forget a purchase Stripe may still deliver again is refused.

use chrono::{Duration, Utc};
use landlord_worker::{
    retention::Retention,
    store::{
        Store,
        entities::{processed_command, run},
    },
};
use sea_orm::{ActiveModelTrait, EntityTrait, Set};

async fn processed(store: &Store, id: &str, days_ago: i64) {
    processed_command::ActiveModel {
        command_id: Set(id.into()),
        tenant_id: Set(uuid::Uuid::new_v4().to_string()),
        kind: Set("provision".into()),
        processed_at: Set(Utc::now() - Duration::days(days_ago)),
    }
    .insert(store.connection())
    .await
    .unwrap();
}

async fn a_run(store: &Store, id: &str, status: &str, finished_days_ago: Option<i64>) {
    run::ActiveModel {
        id: Set(id.into()),
        tenant_id: Set(uuid::Uuid::new_v4().to_string()),
        command_id: Set(format!("admin:{id}")),
        kind: Set("provision".into()),
        status: Set(status.into()),
        started_at: Set(Utc::now() - Duration::days(200)),
        finished_at: Set(finished_days_ago.map(|d| Utc::now() - Duration::days(d))),
    }
    .insert(store.connection())
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_past_their_retention_are_pruned_and_recent_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("cp.db").display())).await.unwrap();
    processed(&store, "stripe:evt_old", 31).await;
    processed(&store, "stripe:evt_recent", 29).await;
    a_run(&store, "old-failed", "failed", Some(91)).await;
    a_run(&store, "recent-failed", "failed", Some(89)).await;
    a_run(&store, "still-going", "running", None).await;
    // A succeeded run is what tells a redelivered purchase its tenant exists: never pruned.
    a_run(&store, "old-succeeded", "succeeded", Some(400)).await;

    let policy = Retention::default();
    assert_eq!((policy.processed_commands_days, policy.runs_days), (30, 90));
    assert_eq!(policy.prune(&store).await.unwrap(), (1, 1));
    assert!(store.is_processed("stripe:evt_recent").await.unwrap());
    assert!(!store.is_processed("stripe:evt_old").await.unwrap());
    let mut runs: Vec<String> =
        run::Entity::find().all(store.connection()).await.unwrap().into_iter().map(|r| r.id).collect();
    runs.sort();
    assert_eq!(runs, ["old-succeeded", "recent-failed", "still-going"]);
    assert_eq!(policy.prune(&store).await.unwrap(), (0, 0), "pruning again finds nothing");
}

#[test]
fn a_retention_shorter_than_stripes_retries_is_refused() {
    let short = Retention { processed_commands_days: 3, ..Retention::default() };
    let err = short.validate().unwrap_err();
    assert!(err.contains("LANDLORD_RETENTION__PROCESSED_COMMANDS_DAYS"), "{err}");
    assert!(Retention { runs_days: 0, ..Retention::default() }.validate().is_err());
    assert!(Retention::default().validate().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_events_are_kept_as_long_as_the_workers_policy_says() {
    use landlord_tests::{Engine, Options, TestApp};
    fn two_days(cfg: &mut landlord_worker::WorkerConfig, _: &landlord_tests::Infra) {
        cfg.retention.progress_days = 2;
    }
    // The ingress creates the stream first with the default; the worker brings it to its policy.
    let app = TestApp::spawn_with(Options { worker: two_days, ..Options::new(Engine::MariaDb) }).await;
    let want = std::time::Duration::from_secs(2 * 24 * 3600);
    let mut age = std::time::Duration::ZERO;
    for _ in 0..100 {
        let mut stream = app.bus.jetstream().get_stream("LANDLORD_PROGRESS").await.unwrap();
        age = stream.info().await.unwrap().config.max_age;
        if age == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(age, want, "the progress stream keeps events for the configured days");
    assert!(Retention { progress_days: 0, ..Retention::default() }.validate().is_err());
}
