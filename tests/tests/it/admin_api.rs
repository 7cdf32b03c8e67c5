//! The admin API against a real Landlord: every endpoint refuses a missing token (401) and a viewer's
//! changes (403), answers 404 for an unknown tenant at once, creates tenants idempotently, lists them with
//! filters and pages, shows one without any secret, sends each change as a command (202) and records who
//! asked in the audit log.

use std::time::Duration;

use landlord_protocol::{TenantId, TenantStatus};
use landlord_tests::{ADMIN_TOKEN, Engine, TestApp, VIEWER_TOKEN, chaos::eventually, unique_slug};
use reqwest::Method;
use serde_json::{Value, json};

async fn call(app: &TestApp, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut req = app.http.request(method, format!("{}{path}", app.base_url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn endpoints(tenant: &str) -> Vec<(Method, String, Option<Value>, bool)> {
    let plan = json!({"package_id": 20, "subscription_type_id": 10});
    let new =
        json!({"store_name": "Shop", "contact_email": "a@b.example", "package_id": 10, "subscription_type_id": 10});
    vec![
        (Method::GET, "/v1/tenants".into(), None, false),
        (Method::GET, format!("/v1/tenants/{tenant}"), None, false),
        (Method::GET, "/v1/audit".into(), None, false),
        (Method::POST, "/v1/tenants".into(), Some(new), true),
        (Method::POST, format!("/v1/tenants/{tenant}/provision"), None, true),
        (Method::POST, format!("/v1/tenants/{tenant}/suspend"), None, true),
        (Method::POST, format!("/v1/tenants/{tenant}/resume"), None, true),
        (Method::POST, format!("/v1/tenants/{tenant}/plan"), Some(plan), true),
        (Method::DELETE, format!("/v1/tenants/{tenant}"), None, true),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_needs_a_token_changes_need_an_admin_and_unknown_tenants_are_404() {
    // Every endpoint twice without a valid token is more failures than one address may make by default.
    let limits =
        landlord_ingress::Limits { admin_auth_failures_per_minute: 1000, ..landlord_ingress::Limits::default() };
    let app = TestApp::spawn_with(landlord_tests::Options {
        ingress_limits: limits,
        ..landlord_tests::Options::new(Engine::MariaDb)
    })
    .await;
    let unknown = TenantId::new_random().to_string();
    for (method, path, body, mutates) in endpoints(&unknown) {
        let (status, answer) = call(&app, method.clone(), &path, None, body.clone()).await;
        assert_eq!(status, 401, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], "unauthorized");
        let (status, answer) = call(&app, method.clone(), &path, Some("not-a-token-at-all"), body.clone()).await;
        assert_eq!(status, 401, "{method} {path}: {answer}");
        let (status, answer) = call(&app, method.clone(), &path, Some(VIEWER_TOKEN), body.clone()).await;
        if mutates {
            assert_eq!(
                (status, answer["error"]["code"].as_str()),
                (403, Some("forbidden")),
                "{method} {path}: {answer}"
            );
            assert!(answer["error"]["message"].as_str().unwrap().contains("dash"), "{answer}");
        } else if path.contains(&unknown) {
            assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("tenant_not_found")), "{path}");
        } else {
            assert_eq!(status, 200, "{method} {path}: {answer}");
        }
        if mutates && path.contains(&unknown) {
            let (status, answer) = call(&app, method.clone(), &path, Some(ADMIN_TOKEN), body).await;
            assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("tenant_not_found")), "{method} {path}");
        }
    }
    // Bad input changes nothing and says what to fix.
    let (status, answer) = call(&app, Method::GET, "/v1/tenants?colour=red", Some(VIEWER_TOKEN), None).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("bad_query")), "{answer}");
    let (status, answer) = call(&app, Method::GET, "/v1/tenants/not-an-id", Some(VIEWER_TOKEN), None).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("bad_tenant_id")));
    let bad_plan =
        json!({"store_name": "Shop", "contact_email": "a@b.example", "package_id": 99, "subscription_type_id": 10});
    let (status, answer) = call(&app, Method::POST, "/v1/tenants", Some(ADMIN_TOKEN), Some(bad_plan)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("unknown_plan")), "{answer}");
    // A change that cannot apply to the tenant's status is refused with the reason, and nothing is sent.
    let failed_slug = unique_slug("apifailed");
    let failed = app.buy(&failed_slug, 9).await;
    app.wait_for_status(&failed, TenantStatus::Failed).await;
    for (method, end) in [(Method::POST, "/suspend"), (Method::POST, "/plan"), (Method::DELETE, "")] {
        let body = (end == "/plan").then(|| json!({"package_id": 20, "subscription_type_id": 10}));
        let (status, answer) =
            call(&app, method.clone(), &format!("/v1/tenants/{failed}{end}"), Some(ADMIN_TOKEN), body).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("wrong_status")), "{method} {end}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains("is failed"), "{answer}");
    }
    let (status, _) =
        call(&app, Method::DELETE, &format!("/v1/tenants/{failed}?now=true"), Some(ADMIN_TOKEN), None).await;
    assert_eq!(status, 202, "a failed tenant is offboarded at once when asked to be");
    app.wait_for_status(&failed, TenantStatus::Deleted).await;
    let hostile = json!({"store_name": "Shop", "contact_email": "a@b.example", "package_id": 10, "subscription_type_id": 10, "subdomain": "x'; DROP TABLE tenants; --"});
    let (status, answer) = call(&app, Method::POST, "/v1/tenants", Some(ADMIN_TOKEN), Some(hostile)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("bad_subdomain")), "{answer}");
}

async fn command_done(app: &TestApp, answer: &Value) {
    let id = answer["command_id"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(60), "the command handled", || async { app.store.is_processed(&id).await.unwrap() })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_a_tenants_life_through_the_api_and_the_audit_log_says_who() {
    let app = TestApp::spawn(Engine::Postgres).await;
    let slug = unique_slug("api");
    let new = json!({"store_name": "Api Shop", "contact_email": "owner@api.example", "package_id": 10, "subscription_type_id": 10, "subdomain": slug});
    let create = || async {
        app.http
            .post(format!("{}/v1/tenants", app.base_url))
            .bearer_auth(ADMIN_TOKEN)
            .header("Idempotency-Key", format!("create-{slug}"))
            .json(&new)
            .send()
            .await
            .unwrap()
    };
    let first = create().await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let again: Value = create().await.json().await.unwrap();
    assert_eq!(
        (again["tenant_id"].clone(), again["command_id"].clone()),
        (first["tenant_id"].clone(), first["command_id"].clone())
    );
    assert_eq!(again["duplicate"], true);
    let tenant = TenantId::parse(first["tenant_id"].as_str().unwrap()).unwrap();
    app.wait_for_status(&tenant, TenantStatus::Active).await;

    // One tenant, its steps and what Landlord made; never its password.
    let (status, shown) = call(&app, Method::GET, &format!("/v1/tenants/{tenant}"), Some(VIEWER_TOKEN), None).await;
    assert_eq!(status, 200);
    assert_eq!((shown["subdomain"].as_str(), shown["status"].as_str()), (Some(slug.as_str()), Some("active")));
    assert_eq!(shown["plan"]["name"], "Essential General");
    let steps: Vec<&str> = shown["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert!(steps.contains(&"apply_schema") && steps.contains(&"activate"), "{steps:?}");
    assert!(shown["resources"].as_array().unwrap().iter().any(|r| r["kind"] == "database"), "{shown}");
    let password = app.tenant_password(&tenant).await;
    let text = shown.to_string();
    assert!(!text.contains(secrecy::ExposeSecret::expose_secret(&password)) && !text.contains("password"), "{text}");

    // The list filters and pages.
    let (_, active) =
        call(&app, Method::GET, "/v1/tenants?status=active&package_id=10&limit=500", Some(VIEWER_TOKEN), None).await;
    assert!(active["tenants"].as_array().unwrap().iter().any(|t| t["id"] == tenant.to_string()));
    let (_, failing) = call(&app, Method::GET, "/v1/tenants?failing_step=apply_schema", Some(VIEWER_TOKEN), None).await;
    assert!(!failing["tenants"].as_array().unwrap().iter().any(|t| t["id"] == tenant.to_string()));
    let (_, page) = call(&app, Method::GET, "/v1/tenants?limit=1", Some(VIEWER_TOKEN), None).await;
    assert_eq!(page["tenants"].as_array().unwrap().len(), 1);
    let after = page["next_after"].as_str().unwrap().to_owned();
    let (_, next) =
        call(&app, Method::GET, &format!("/v1/tenants?limit=1&after={after}"), Some(VIEWER_TOKEN), None).await;
    assert!(next["tenants"].as_array().unwrap().iter().all(|t| t["id"].as_str().unwrap() > after.as_str()));

    // Changes, each a command answered 202.
    let path = |end: &str| format!("/v1/tenants/{tenant}{end}");
    let (status, a) = call(
        &app,
        Method::POST,
        &path("/plan"),
        Some(ADMIN_TOKEN),
        Some(json!({"package_id": 20, "subscription_type_id": 10})),
    )
    .await;
    assert_eq!(status, 202, "{a}");
    command_done(&app, &a).await;
    assert_eq!(app.store.tenant(&tenant).await.unwrap().unwrap().package_id, 20);
    let (_, a) = call(&app, Method::POST, &path("/suspend"), Some(ADMIN_TOKEN), None).await;
    command_done(&app, &a).await;
    assert_eq!(app.store.tenant(&tenant).await.unwrap().unwrap().status, "suspended");
    let (_, a) = call(&app, Method::POST, &path("/resume"), Some(ADMIN_TOKEN), None).await;
    command_done(&app, &a).await;
    // DELETE waits out the grace period with the tenant suspended; a resume restores it.
    let (_, a) = call(&app, Method::DELETE, &path(""), Some(ADMIN_TOKEN), None).await;
    command_done(&app, &a).await;
    let row = app.store.tenant(&tenant).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.offboard_at.is_some()), ("suspended", true));
    let (_, a) = call(&app, Method::POST, &path("/resume"), Some(ADMIN_TOKEN), None).await;
    command_done(&app, &a).await;
    let row = app.store.tenant(&tenant).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.offboard_at), ("active", None));
    let (status, answer) = call(&app, Method::DELETE, &path("?now=maybe"), Some(ADMIN_TOKEN), None).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("bad_query")));
    let (_, a) = call(&app, Method::DELETE, &path("?now=true"), Some(ADMIN_TOKEN), None).await;
    command_done(&app, &a).await;
    app.wait_for_status(&tenant, TenantStatus::Deleted).await;

    // The audit log: every change, who asked, newest first.
    let (status, audit) =
        call(&app, Method::GET, &format!("/v1/audit?tenant={tenant}"), Some(VIEWER_TOKEN), None).await;
    assert_eq!(status, 200);
    let actions: Vec<(&str, &str)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("offboard", "admin:ops"),
            ("resume", "admin:ops"),
            ("offboard", "admin:ops"),
            ("resume", "admin:ops"),
            ("suspend", "admin:ops"),
            ("change_plan", "admin:ops"),
            ("provision", "admin:ops"),
        ]
    );
}

/// `landlord tenants …` and `landlord audit` go through the admin API with the operator's token; the
/// OpenAPI document the ingress serves is the checked-in one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_uses_the_admin_api_and_the_served_openapi_is_the_checked_in_one() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let slug = unique_slug("cli");
    let tenant = app.buy(&slug, 10).await;
    app.wait_for_status(&tenant, TenantStatus::Active).await;
    let landlord = |args: &[&str], token: &str| {
        let out = std::process::Command::new(landlord_tests::chaos::workspace_bin("landlord"))
            .args(args)
            .env("LANDLORD_API_URL", &app.base_url)
            .env("LANDLORD_ADMIN_TOKEN", token)
            .output()
            .expect("landlord runs");
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let id = tenant.to_string();
    let (ok, out) = tokio::task::block_in_place(|| landlord(&["tenants", "list", "--status", "active"], VIEWER_TOKEN));
    assert!(ok && out.contains(&id) && out.contains(&slug), "{out}");
    let (ok, out) = tokio::task::block_in_place(|| landlord(&["tenants", "show", &id], VIEWER_TOKEN));
    assert!(ok && out.contains("apply_schema") && out.contains("Essential General"), "{out}");
    let (ok, out) = tokio::task::block_in_place(|| landlord(&["tenants", "suspend", &id], VIEWER_TOKEN));
    assert!(!ok && out.contains("403") && out.contains("forbidden"), "a viewer cannot suspend: {out}");
    let (ok, out) = tokio::task::block_in_place(|| landlord(&["tenants", "suspend", &id], ADMIN_TOKEN));
    assert!(ok && out.contains("suspension of"), "{out}");
    app.wait_for_status(&tenant, TenantStatus::Suspended).await;
    let (ok, out) = tokio::task::block_in_place(|| landlord(&["audit", "--tenant", &id], VIEWER_TOKEN));
    assert!(ok && out.contains("suspend") && out.contains("admin:ops"), "{out}");
    let (ok, out) = tokio::task::block_in_place(|| {
        landlord(&["tenants", "show", &TenantId::new_random().to_string()], ADMIN_TOKEN)
    });
    assert!(!ok && out.contains("tenant_not_found"), "{out}");

    let served: Value =
        app.http.get(format!("{}/openapi.json", app.base_url)).send().await.unwrap().json().await.unwrap();
    let checked_in: Value =
        serde_json::from_slice(&std::fs::read(landlord_tests::repo_root().join("ingress/openapi.json")).unwrap())
            .unwrap();
    assert_eq!(served, checked_in);
    app.drop_tenant_db(&slug).await;
}

/// Finding one customer among thousands: `search` matches the start of the subdomain or of the contact
/// email, in any case, and takes `_` and `%` literally (they are LIKE's wildcards).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_finds_a_tenant_by_the_start_of_its_subdomain_or_email_with_wildcards_taken_literally() {
    let app = TestApp::spawn(Engine::MariaDb).await;
    let tag = unique_slug("find").replace('-', "");
    let mut made = Vec::new();
    for (n, email) in [(1, format!("{tag}_1@search.example")), (2, format!("{tag}x1@search.example"))] {
        let slug = unique_slug(&format!("find{n}"));
        let new = json!({"store_name": "Find", "contact_email": email, "package_id": 10, "subscription_type_id": 10, "subdomain": slug});
        let (status, answer) = call(&app, Method::POST, "/v1/tenants", Some(ADMIN_TOKEN), Some(new)).await;
        assert_eq!(status, 202, "{answer}");
        let id = TenantId::parse(answer["tenant_id"].as_str().unwrap()).unwrap();
        made.push((id, slug));
    }
    for (id, _) in &made {
        eventually(Duration::from_secs(60), "the tenant recorded", || async {
            app.store.tenant(id).await.unwrap().is_some()
        })
        .await;
    }
    let (app, made) = (&app, &made);
    let found = |search: String| async move {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("search", &search)
            .append_pair("limit", "500")
            .finish();
        let (status, page) = call(app, Method::GET, &format!("/v1/tenants?{query}"), Some(VIEWER_TOKEN), None).await;
        assert_eq!(status, 200, "{page}");
        let ids: Vec<String> =
            page["tenants"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect();
        made.iter().map(|(id, _)| ids.contains(&id.to_string())).collect::<Vec<bool>>()
    };
    // `_` is not "any character": only the first tenant's email starts with `<tag>_1`.
    assert_eq!(found(format!("{tag}_1")).await, [true, false]);
    // Any case, email or subdomain.
    assert_eq!(found(format!("{}X1", tag.to_uppercase())).await, [false, true]);
    assert_eq!(found(made[0].1.to_uppercase()).await, [true, false]);
    assert_eq!(found(tag.clone()).await, [true, true]);
    // `%` is not "anything".
    assert_eq!(found("%".into()).await, [false, false]);
    assert_eq!(found(format!("%{}", &tag[1..])).await, [false, false]);
    let (status, answer) =
        call(app, Method::GET, &format!("/v1/tenants?search={}", "a".repeat(101)), Some(VIEWER_TOKEN), None).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("bad_query")));
    for (_, slug) in made.iter() {
        app.drop_tenant_db(slug).await;
    }
}
