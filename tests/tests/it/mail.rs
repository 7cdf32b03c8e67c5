//! Mail over real SMTP (aiosmtpd on a free port): the welcome arrives once the tenant is active, with the
//! store's and its admin's addresses; a mail server that is down when the tenant becomes active delays
//! nothing, and the welcome is delivered once the server is up; an operator's replacement template is
//! used; operators are told when a tenant waits for them.

use std::time::Duration;

use landlord_protocol::TenantStatus;
use landlord_tests::{Engine, Options, TestApp, chaos::eventually, free_port, smtp::SmtpSink, unique_slug};

fn with_mail(port: u16) -> Options {
    let mut opts = Options::new(Engine::MariaDb);
    opts.infra.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
    opts.worker = |cfg, infra| {
        cfg.smtp_url = infra.smtp_url.clone().map(Into::into);
        cfg.smtp_from = "Landlord <landlord@shop.example.test>".into();
        cfg.operator_email = infra.operator_email.iter().cloned().collect();
        cfg.welcome_template = infra.welcome_template.clone().map(Into::into);
        cfg.tenant_domain = Some("shop.example.test".into());
        cfg.mail_retry = Duration::from_secs(1);
        cfg.timer_interval = Duration::from_secs(1);
    };
    opts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_welcome_waits_for_a_mail_server_that_is_down_without_delaying_the_tenant() {
    let port = free_port();
    let app = TestApp::spawn_with(with_mail(port)).await;
    let slug = unique_slug("mail");
    let tenant = app.buy(&slug, 10).await;
    // The mail server is down: the tenant is active all the same.
    app.wait_for_status(&tenant, TenantStatus::Active).await;
    let id = tenant.to_string();
    eventually(Duration::from_secs(30), "a failed delivery recorded", || async {
        app.store.mail_of(&id).await.unwrap().first().is_some_and(|m| m.attempts >= 1 && m.last_error.is_some())
    })
    .await;
    let queued = app.store.mail_of(&id).await.unwrap();
    assert_eq!(queued.len(), 1, "one welcome: {queued:?}");
    assert!(queued[0].sent_at.is_none());

    let sink = SmtpSink::start_on(port);
    eventually(Duration::from_secs(60), "the welcome delivered", || async { !sink.messages().is_empty() }).await;
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "delivered once");
    let message = &messages[0];
    let row = app.store.tenant(&tenant).await.unwrap().unwrap();
    assert!(message.contains(&format!("To: {}", row.contact_email)), "{message}");
    assert!(message.contains("From: Landlord <landlord@shop.example.test>"), "{message}");
    assert!(message.contains(&format!("Subject: {} is ready", row.store_name)), "{message}");
    assert!(message.contains(&format!("https://{slug}.shop.example.test/admin")), "the admin's address: {message}");
    assert!(message.contains("Next steps"), "{message}");
    eventually(Duration::from_secs(10), "the delivery recorded", || async {
        app.store.mail_of(&id).await.unwrap()[0].sent_at.is_some()
    })
    .await;
    // Sent is sent: nothing goes out twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sink.messages().len(), 1);
    app.drop_tenant_db(&slug).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_template_is_used_and_operators_hear_of_a_tenant_waiting_for_them() {
    let port = free_port();
    let sink = SmtpSink::start_on(port);
    let template = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        template.path(),
        "Subject: Bienvenue, {{store_name}}\n\nVotre boutique : {{store_url}}\nPlan : {{plan}}\n",
    )
    .unwrap();
    let mut opts = with_mail(port);
    opts.infra.operator_email = Some("ops@shop.example.test".into());
    opts.infra.welcome_template = Some(template.path().display().to_string());
    let app = TestApp::spawn_with(opts).await;

    let slug = unique_slug("mailtpl");
    let tenant = app.buy(&slug, 10).await;
    app.wait_for_status(&tenant, TenantStatus::Active).await;
    // Enterprise (40) needs a dedicated server nobody handed over: it waits for an operator.
    let waiting_slug = unique_slug("mailops");
    let waiting = app.buy(&waiting_slug, 40).await;
    app.wait_for_status(&waiting, TenantStatus::AwaitingOperator).await;

    eventually(Duration::from_secs(60), "the welcome and the notice", || async { sink.messages().len() >= 2 }).await;
    let messages = sink.messages();
    let welcome = messages.iter().find(|m| m.contains("Bienvenue")).expect("the operator's template");
    assert!(welcome.contains(&format!("Votre boutique : https://{slug}.shop.example.test")), "{welcome}");
    assert!(welcome.contains("Plan : Essential General"), "{welcome}");
    let notice = messages.iter().find(|m| m.contains("To: ops@shop.example.test")).expect("a notice to operators");
    assert!(notice.contains(&format!("tenant {waiting_slug} waits for an operator")), "{notice}");
    assert!(notice.contains("dedicated"), "the reason: {notice}");
    assert_eq!(messages.len(), 2, "one welcome (the waiting tenant is not active) and one notice");
    app.drop_tenant_db(&slug).await;
}

/// The outbox's bookkeeping, on each control plane: one sender at a time holds a message, a lapsed claim
/// cannot record a delivery, and a message given up on is never claimed again (on SQLite, where times are
/// text, a far-future "never" once sorted first and came due at once).
async fn the_outbox_hands_each_message_to_one_sender(store: &landlord_worker::store::Store) {
    use landlord_worker::store::NewMail;
    let hold = || chrono::Utc::now() + chrono::Duration::seconds(120);
    let id = uuid::Uuid::new_v4();
    let tenant = id.to_string();
    let new = NewMail {
        id,
        kind: "welcome",
        tenant_id: Some(&tenant),
        recipient: "owner@example.com",
        subject: "Welcome",
        body: "Hello",
    };
    assert!(store.queue_mail(new.clone()).await.unwrap());
    assert!(!store.queue_mail(new).await.unwrap(), "queued once");

    let first = store.claim_due_mail(hold()).await.unwrap().expect("due");
    assert_eq!(first.id, id.to_string());
    assert!(store.claim_due_mail(hold()).await.unwrap().is_none(), "held by the first sender");

    // A failure to try again soon: due again then, and a claim from before it no longer counts.
    store.mail_failed(&first, "421 busy", Some(chrono::Utc::now() - chrono::Duration::seconds(1))).await.unwrap();
    let second = store.claim_due_mail(hold()).await.unwrap().expect("due again");
    assert!(!store.mail_sent(&first).await.unwrap(), "the lapsed claim records nothing");

    // Given up: never claimed again, however the times sort.
    store.mail_failed(&second, "550 no such mailbox", None).await.unwrap();
    assert!(store.claim_due_mail(hold()).await.unwrap().is_none(), "given up is never due");
    let kept = store.mail_of(&tenant).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].attempts, 2);
    assert!(kept[0].given_up_at.is_some() && kept[0].sent_at.is_none());
    assert_eq!(kept[0].last_error.as_deref(), Some("550 no such mailbox"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_hands_each_message_to_one_sender_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("outbox.db").display());
    the_outbox_hands_each_message_to_one_sender(&landlord_worker::store::Store::connect(&url).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_hands_each_message_to_one_sender_on_postgresql() {
    let (url, name) = landlord_tests::chaos::fresh_postgres_database("outbox").await;
    let store = landlord_worker::store::Store::connect(&url).await.unwrap();
    the_outbox_hands_each_message_to_one_sender(&store).await;
    drop(store);
    landlord_tests::chaos::drop_database(&name).await;
}
