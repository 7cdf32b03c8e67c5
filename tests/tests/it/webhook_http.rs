//! The webhook endpoint over HTTP: what Stripe (or an impostor) sees.

use landlord_tests::{Engine, TestApp, checkout_event, plan_metadata};
use secrecy::SecretString;

async fn error_code(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let v: serde_json::Value = res.json().await.unwrap();
    (status, v["error"]["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_are_checked_over_http() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let body = checkout_event("evt_http_1", "cs_http_1", plan_metadata("http-shop", 10, 10));

    // Tampered body.
    let sig = app.sign(&body);
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    assert_eq!(error_code(app.post_webhook(tampered, Some(sig.clone())).await).await, (400, "bad_signature".into()));
    // Missing and garbled headers.
    assert_eq!(error_code(app.post_webhook(body.clone(), None).await).await, (400, "bad_signature".into()));
    assert_eq!(
        error_code(app.post_webhook(body.clone(), Some("t=x,v1=zz".into())).await).await,
        (400, "bad_signature".into())
    );
    // Wrong secret.
    let wrong = landlord_ingress::stripe::signature::sign(
        &body,
        &SecretString::from("whsec_wrong".to_owned()),
        chrono::Utc::now().timestamp(),
    );
    assert_eq!(error_code(app.post_webhook(body.clone(), Some(wrong)).await).await, (400, "bad_signature".into()));
    // Stale and future timestamps.
    let secret = SecretString::from(app.secret.clone());
    let now = chrono::Utc::now().timestamp();
    for t in [now - 3600, now + 3600] {
        let sig = landlord_ingress::stripe::signature::sign(&body, &secret, t);
        let res = app.post_webhook(body.clone(), Some(sig)).await;
        let status = res.status().as_u16();
        let msg = res.json::<serde_json::Value>().await.unwrap()["error"]["message"].as_str().unwrap().to_owned();
        assert_eq!(status, 400);
        assert!(msg.contains("timestamp"), "{msg}");
    }
    // A body that is not an event.
    assert_eq!(error_code(app.post_signed(b"{\"nope\":1}".to_vec()).await).await, (400, "bad_event".into()));
    // Over the 64 KiB webhook limit.
    let big = vec![b' '; 1024 * 1024 + 1];
    let res = app.post_webhook(big, Some("t=1,v1=00".into())).await;
    assert_eq!(res.status(), 413);
    // Nothing above reached JetStream.
    let stream = app.bus.jetstream().get_stream("LANDLORD_COMMANDS").await.unwrap();
    assert_eq!(stream.get_info().await.unwrap().state.last_sequence, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unhandled_events_are_acknowledged_and_ignored() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let mut event: serde_json::Value =
        serde_json::from_slice(&checkout_event("evt_other", "cs_other", serde_json::json!({}))).unwrap();
    event["type"] = "invoice.paid".into();
    let res = app.post_signed(serde_json::to_vec(&event).unwrap()).await;
    assert_eq!(res.status(), 200);
    let v: serde_json::Value = res.json().await.unwrap();
    assert!(v["ignored"].as_str().unwrap().contains("invoice.paid"));
    // An unpaid checkout waits for the async payment event.
    let mut unpaid: serde_json::Value =
        serde_json::from_slice(&checkout_event("evt_unpaid", "cs_unpaid", plan_metadata("unpaid-shop", 10, 10)))
            .unwrap();
    unpaid["data"]["object"]["payment_status"] = "unpaid".into();
    let v: serde_json::Value = app.post_signed(serde_json::to_vec(&unpaid).unwrap()).await.json().await.unwrap();
    assert!(v["ignored"].as_str().unwrap().contains("not paid"));
    assert!(app.store.tenants().await.unwrap().is_empty());
}

/// With JetStream down, readiness fails and Stripe gets a 503 (it will retry); once NATS is back the same
/// event is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_down_means_503_then_recovery() {
    let mut app = TestApp::spawn(Engine::MariaDb).await;
    assert_eq!(app.http.get(format!("{}/healthz", app.base_url)).send().await.unwrap().status(), 200);
    app.nats.as_mut().unwrap().kill();
    let body = checkout_event("evt_down", "cs_down", plan_metadata("down-shop", 10, 10));
    let (status, code) = error_code(app.post_signed(body.clone()).await).await;
    assert_eq!((status, code.as_str()), (503, "unavailable"));
    assert_eq!(app.http.get(format!("{}/readyz", app.base_url)).send().await.unwrap().status(), 503);

    app.nats.as_mut().unwrap().restart();
    let mut accepted = false;
    for _ in 0..100 {
        let res = app.post_signed(body.clone()).await;
        if res.status() == 200 {
            accepted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(accepted, "the ingress recovers once JetStream is back");
}

/// The vector signed by Stripe's official library, sent over HTTP to an ingress holding its secret: the
/// signature is accepted and the refusal is only about the vector's fixed (old) timestamp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_vector_is_refused_only_for_its_age_over_http() {
    let dir = landlord_tests::repo_root().join("ingress/tests/vectors");
    let body = std::fs::read(dir.join("stripe_checkout_completed.json")).unwrap();
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("stripe_checkout_completed.meta.json")).unwrap()).unwrap();
    let secret = meta["secret"].as_str().unwrap().to_owned();
    let app = TestApp::spawn_with(landlord_tests::Options {
        secret: Some(secret),
        ..landlord_tests::Options::new(Engine::MariaDb)
    })
    .await;
    let res = app.post_webhook(body, Some(meta["header"].as_str().unwrap().to_owned())).await;
    assert_eq!(res.status(), 400);
    let msg = res.json::<serde_json::Value>().await.unwrap()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("timestamp") && msg.contains("old"), "{msg}");
}
