//! The infrastructure steps against moto's server through the real AWS SDK: Route 53 records, the
//! CloudFormation stack and its outputs, the health check, scripts in S3, and what happens when each
//! goes wrong. Where moto differs from AWS (stack failures come back as API errors, not rolled-back
//! stacks; changes are INSYNC at once), the worker's recorded-response tests cover AWS's behaviour.

use landlord_protocol::{EventKind, TenantSlug, TenantStatus};
use landlord_tests::{Engine, Infra, MotoServer, Options, TestApp, unique_slug};
use landlord_worker::steps::StepName;
use landlord_worker::{
    keepalive::NoKeepAlive,
    steps::{StepContext, StepDone, TenantPlan},
};

pub(crate) const TARGET: &str = "lb.tenants.example.net";

pub(crate) async fn create_zone(aws: &aws_config::SdkConfig, name: &str) -> String {
    let r53 = aws_sdk_route53::Client::new(aws);
    let zone = r53.create_hosted_zone().name(name).caller_reference(unique_slug("zone")).send().await.unwrap();
    zone.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_owned()
}

/// Record sets in the zone whose name mentions `slug`, as (name, type, ttl, values).
pub(crate) async fn records(
    aws: &aws_config::SdkConfig,
    zone: &str,
    slug: &str,
) -> Vec<(String, String, Option<i64>, Vec<String>)> {
    let r53 = aws_sdk_route53::Client::new(aws);
    let out = r53.list_resource_record_sets().hosted_zone_id(zone).send().await.unwrap();
    out.resource_record_sets()
        .iter()
        .filter(|r| r.name().contains(slug))
        .map(|r| {
            let values = r.resource_records().iter().map(|v| v.value().to_owned()).collect();
            (r.name().to_owned(), r.r#type().as_str().to_owned(), r.ttl(), values)
        })
        .collect()
}

pub(crate) fn template(health_url: &str, extra_resource: &str) -> String {
    format!(
        r#"{{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Description": "Landlord tenant website (test)",
  "Parameters": {{
    "TenantUrl": {{"Type": "String"}}, "ApiUrl": {{"Type": "String"}}, "DatabaseName": {{"Type": "String"}},
    "Plan": {{"Type": "String"}}, "Environment": {{"Type": "String"}}
  }},
  "Resources": {{
    "Events": {{"Type": "AWS::SNS::Topic", "Properties": {{"TopicName": {{"Fn::Sub": "${{DatabaseName}}-${{Environment}}-events"}}}}}}
    {extra_resource}
  }},
  "Outputs": {{
    "HealthUrl": {{"Value": "{health_url}"}},
    "EventsTopic": {{"Value": {{"Ref": "Events"}}}}
  }}
}}"#
    )
}

pub(crate) fn with_infra(cfg: &mut landlord_worker::WorkerConfig, infra: &Infra) {
    cfg.route53_zone_id = infra.zone_id.clone();
    cfg.dns_target = Some(TARGET.into());
    cfg.stack_template = infra.template.clone();
    if let Some(scripts) = &infra.scripts {
        cfg.scripts = scripts.clone();
    }
    if let Some(archive) = &infra.archive {
        cfg.archive = archive.clone();
    }
    if let Some(base) = &infra.stripe_api_base {
        cfg.stripe_api_base = base.clone();
        cfg.stripe_api_key = Some("sk_test_landlord".to_owned().into());
    }
}

/// A Landlord whose worker uses moto for AWS and the given infrastructure.
pub(crate) async fn spawn_on_moto(aws: &aws_config::SdkConfig, infra: Infra, engine: Engine) -> TestApp {
    TestApp::spawn_with(Options { aws: Some(aws.clone()), worker: with_infra, infra, ..Options::new(engine) }).await
}

/// moto with a hosted zone, and a Landlord whose tenants get DNS records and a stack whose health URL is
/// this test's ingress (it answers 200 on /healthz). The folder holds the template; keep it alive.
pub(crate) async fn with_zone_and_stack() -> (MotoServer, aws_config::SdkConfig, String, tempfile::TempDir, TestApp) {
    let moto = MotoServer::start();
    let aws = moto.sdk_config().await;
    let zone = create_zone(&aws, "tenants.example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let template_path = dir.path().join("tenant.json");
    let infra =
        Infra { zone_id: Some(zone.clone()), template: Some(template_path.display().to_string()), ..Infra::default() };
    let app = spawn_on_moto(&aws, infra, Engine::MariaDb).await;
    std::fs::write(&template_path, template(&format!("{}/healthz", app.base_url), "")).unwrap();
    (moto, aws, zone, dir, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_stack_and_health_check_make_a_reachable_tenant() {
    let (_moto, aws, zone, _dir, app) = with_zone_and_stack().await;

    let slug = unique_slug("infra");
    let tenant = app.buy(&slug, 20).await;
    let row = app.wait_for_status(&tenant, TenantStatus::Active).await;
    let (host, api) = (format!("{slug}.tenants.example.com"), format!("{slug}.api.tenants.example.com"));
    assert_eq!(
        (row.hostname.as_deref(), row.api_hostname.as_deref(), row.dns_pending),
        (Some(host.as_str()), Some(api.as_str()), false)
    );

    // Two CNAMEs, TTL 300, pointing at the target.
    let mut found = records(&aws, &zone, &slug).await;
    found.sort();
    assert_eq!(
        found,
        vec![
            (format!("{api}."), "CNAME".into(), Some(300), vec![TARGET.to_owned()]),
            (format!("{host}."), "CNAME".into(), Some(300), vec![TARGET.to_owned()]),
        ]
    );

    // The stack, with the tenant's parameters; its id and outputs are on the tenant.
    let cfn = aws_sdk_cloudformation::Client::new(&aws);
    let stack_name = format!("{slug}-test-website");
    let stack = cfn.describe_stacks().stack_name(&stack_name).send().await.unwrap().stacks()[0].clone();
    assert_eq!(stack.stack_status().unwrap().as_str(), "CREATE_COMPLETE");
    let param = |k: &str| {
        stack
            .parameters()
            .iter()
            .find(|p| p.parameter_key() == Some(k))
            .and_then(|p| p.parameter_value().map(str::to_owned))
    };
    assert_eq!(param("TenantUrl"), Some(format!("https://{host}")));
    assert_eq!(param("ApiUrl"), Some(format!("https://{api}")));
    assert_eq!(param("DatabaseName"), Some(format!("tenant_{}", slug.replace('-', "_"))));
    assert_eq!(param("Plan"), Some("package-20-type-10".into()));
    assert_eq!(param("Environment"), Some("test".into()));
    assert_eq!(row.stack_id.as_deref(), stack.stack_id());
    let outputs: serde_json::Value = serde_json::from_str(row.stack_outputs.as_deref().unwrap()).unwrap();
    assert_eq!(outputs["HealthUrl"], format!("{}/healthz", app.base_url));
    assert!(outputs["EventsTopic"].as_str().unwrap().starts_with("arn:aws:sns:"));

    let events = app
        .events_until(&tenant, |e| e.kind == EventKind::StatusChanged && e.status == Some(TenantStatus::Active))
        .await;
    for step in ["configure_dns", "deploy_stack", "health_check"] {
        assert!(
            events.iter().any(|e| e.kind == EventKind::StepSucceeded && e.step.as_deref() == Some(step)),
            "{step}: {events:#?}"
        );
    }

    // Provisioning the same tenant again changes nothing: still two records, one stack (an update with
    // no changes is success).
    let worker = landlord_worker::build(&app.worker_config, &app.bus, Some(&aws)).await.unwrap();
    let plan = TenantPlan {
        id: tenant,
        slug: TenantSlug::parse(&slug).unwrap(),
        package_id: landlord_protocol::PackageId::parse("20").unwrap(),
        subscription_type_id: landlord_protocol::SubscriptionTypeId::parse("10").unwrap(),
        previous: None,
    };
    let ctx = StepContext {
        tenant: &plan,
        deps: &worker.runner.deps,
        alive: &NoKeepAlive,
        checkpoint: &landlord_worker::steps::no_checkpoint,
    };
    let step = landlord_worker::steps::step;
    for name in [StepName::ConfigureDns, StepName::DeployStack] {
        assert!(matches!(step(name).run(&ctx).await, Ok(StepDone::Done(_))), "{name} again");
    }
    assert_eq!(records(&aws, &zone, &slug).await.len(), 2, "UPSERT never duplicates a record");
    let named = cfn.list_stacks().send().await.unwrap();
    let same: Vec<_> = named.stack_summaries().iter().filter(|s| s.stack_name() == Some(stack_name.as_str())).collect();
    assert_eq!(same.len(), 1, "one stack: {same:?}");

    // Undo removes what the steps made.
    for name in [StepName::DeployStack, StepName::ConfigureDns] {
        step(name).undo(&ctx).expect("can undo").await.unwrap();
    }
    assert!(records(&aws, &zone, &slug).await.is_empty());
    let gone = cfn.describe_stacks().stack_name(&stack_name).send().await;
    assert!(gone.is_err() || gone.unwrap().stacks()[0].stack_status().unwrap().as_str() == "DELETE_COMPLETE");
    app.drop_tenant_db(&slug).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_stack_fails_the_tenant_with_the_reason() {
    let moto = MotoServer::start();
    let aws = moto.sdk_config().await;
    let zone = create_zone(&aws, "tenants.example.com").await;
    let taken = unique_slug("taken");
    aws_sdk_s3::Client::new(&aws).create_bucket().bucket(&taken).send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let template_path = dir.path().join("tenant.json");
    let bucket = format!(r#", "Assets": {{"Type": "AWS::S3::Bucket", "Properties": {{"BucketName": "{taken}"}}}}"#);
    std::fs::write(&template_path, template("http://127.0.0.1:9/healthz", &bucket)).unwrap();
    let infra = Infra { zone_id: Some(zone), template: Some(template_path.display().to_string()), ..Infra::default() };
    let app = spawn_on_moto(&aws, infra, Engine::MariaDb).await;

    let slug = unique_slug("badstack");
    let tenant = app.buy(&slug, 10).await;
    let row = app.wait_for_status(&tenant, TenantStatus::Failed).await;
    // moto refuses the stack at CreateStack (AWS would roll it back; see the recorded-response tests).
    let reason = row.last_error.unwrap();
    assert!(reason.contains("BucketAlreadyExists"), "{reason}");
    let events = app
        .events_until(&tenant, |e| e.kind == EventKind::StatusChanged && e.status == Some(TenantStatus::Failed))
        .await;
    let failed = events.iter().find(|e| e.kind == EventKind::StepFailed).unwrap();
    assert_eq!(failed.step.as_deref(), Some("deploy_stack"));
    let error = failed.error.clone().unwrap();
    assert!(!error.retryable && error.message.contains("BucketAlreadyExists"), "{error:?}");
    let steps = app.store.steps(&tenant).await.unwrap();
    let status = |n: &str| steps.iter().find(|s| s.step == n).map(|s| s.status.clone()).unwrap_or_default();
    assert_eq!((status("configure_dns").as_str(), status("deploy_stack").as_str()), ("succeeded", "failed"));
    assert_eq!(status("health_check"), "", "nothing after the failed step ran");
    app.drop_tenant_db(&slug).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_that_cannot_be_confirmed_never_fails_provisioning_and_is_retried_later() {
    let moto = MotoServer::start();
    let aws = moto.sdk_config().await;
    // A zone id that does not exist: every DNS call fails.
    let infra = Infra { zone_id: Some("ZNOSUCHZONE00".into()), ..Infra::default() };
    let app = spawn_on_moto(&aws, infra, Engine::MariaDb).await;
    let slug = unique_slug("dnslater");
    let tenant = app.buy(&slug, 10).await;
    let row = app.wait_for_status(&tenant, TenantStatus::Active).await;
    assert!(row.dns_pending, "active, flagged dns_pending");
    let events = app
        .events_until(&tenant, |e| e.kind == EventKind::StatusChanged && e.status == Some(TenantStatus::Active))
        .await;
    let deferred =
        events.iter().find(|e| e.step.as_deref() == Some("configure_dns") && e.kind == EventKind::StepSkipped).unwrap();
    assert!(deferred.message.as_deref().unwrap().contains("DNS not confirmed"), "{deferred:?}");
    assert_eq!(
        app.store.step(&tenant, landlord_worker::steps::StepName::ConfigureDns).await.unwrap().unwrap().status,
        "deferred"
    );

    // The zone is fixed (here: created, and the workers pointed at it); the background retry completes DNS.
    let zone = create_zone(&aws, "tenants.example.com").await;
    let mut cfg = app.worker_config.clone();
    cfg.route53_zone_id = Some(zone.clone());
    let worker = landlord_worker::build(&cfg, &app.bus, Some(&aws)).await.unwrap();
    let fixed = landlord_worker::dns_retry::retry_pending(&worker).await;
    assert_eq!(fixed, 1);
    let row = app.store.tenant(&tenant).await.unwrap().unwrap();
    assert!(!row.dns_pending);
    assert_eq!(row.status, "active");
    assert_eq!(records(&aws, &zone, &slug).await.len(), 2);
    assert_eq!(
        app.store.step(&tenant, landlord_worker::steps::StepName::ConfigureDns).await.unwrap().unwrap().status,
        "succeeded"
    );
    let later = app
        .events_until(&tenant, |e| e.kind == EventKind::StepSucceeded && e.step.as_deref() == Some("configure_dns"))
        .await;
    assert!(later.last().unwrap().message.as_deref().unwrap().contains("background"));
    app.drop_tenant_db(&slug).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_scripts_from_s3() {
    use landlord_worker::scripts::{ScriptSource, upload};
    let moto = MotoServer::start();
    let aws = moto.sdk_config().await;
    let s3 = landlord_worker::infra::s3_client(&aws);
    let bucket = unique_slug("plans");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();

    // A folder with one misnamed file is refused whole: nothing is uploaded.
    let bad = tempfile::tempdir().unwrap();
    std::fs::create_dir(bad.path().join("mysql")).unwrap();
    std::fs::write(bad.path().join("mysql/package-10-type-10.sql"), "SELECT 1;").unwrap();
    std::fs::write(bad.path().join("mysql/plan-one.sql"), "SELECT 1;").unwrap();
    let problems = upload::check_folder(bad.path()).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("plan-one.sql"), "{problems:?}");
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(listed.key_count(), Some(0));

    // The real scripts upload as application/sql under the prefix.
    let uploads = upload::check_folder(&landlord_tests::repo_root().join("sql-scripts")).unwrap();
    let mut reported = 0;
    upload::upload(&s3, &bucket, "plans", &uploads, |_| reported += 1).await.unwrap();
    assert_eq!(reported, 16);
    let listed = s3.list_objects_v2().bucket(&bucket).prefix("plans/").send().await.unwrap();
    let mut keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
    keys.sort();
    assert_eq!(keys.len(), 16);
    assert_eq!(keys[0], "plans/mysql/package-10-type-10.sql");
    let head = s3.head_object().bucket(&bucket).key("plans/postgres/package-30-type-20.sql").send().await.unwrap();
    assert_eq!(head.content_type(), Some("application/sql"));

    // A worker reads them from S3; a missing plan names the bucket and key.
    let infra = Infra { scripts: Some(format!("s3://{bucket}/plans/")), ..Infra::default() };
    let app = spawn_on_moto(&aws, infra, Engine::Postgres).await;
    let slug = unique_slug("s3plan");
    let tenant = app.buy(&slug, 30).await;
    let row = app.wait_for_status(&tenant, TenantStatus::Active).await;
    let conn = app.connect_as_tenant(Engine::Postgres, &row, row.db_name.as_deref().unwrap()).await.unwrap();
    assert_eq!(landlord_tests::scalar(&conn, "SELECT COUNT(*) AS n FROM loyalty_accounts").await, 0);
    conn.close().await.ok();
    let missing = unique_slug("s3missing");
    let tenant = app.buy(&missing, 9).await;
    let row = app.wait_for_status(&tenant, TenantStatus::Failed).await;
    let reason = row.last_error.unwrap();
    assert!(reason.contains(&format!("s3://{bucket}/plans/postgres/package-9-type-10.sql")), "{reason}");
    assert!(reason.contains(&format!("or s3://{bucket}/plans/package-9-type-10.sql")), "{reason}");

    // A script lying flat under the prefix (the layout of a product with one engine) is used when the
    // engine's folder has none.
    let flat_sql = "CREATE TABLE flat_layout (id INT PRIMARY KEY);\nINSERT INTO flat_layout VALUES (1);\n";
    let flat_key = "plans/package-8-type-10.sql";
    s3.put_object().bucket(&bucket).key(flat_key).body(flat_sql.as_bytes().to_vec().into()).send().await.unwrap();
    let flat = unique_slug("s3flat");
    let tenant = app.buy(&flat, 8).await;
    let row = app.wait_for_status(&tenant, TenantStatus::Active).await;
    let conn = app.connect_as_tenant(Engine::Postgres, &row, row.db_name.as_deref().unwrap()).await.unwrap();
    assert_eq!(landlord_tests::scalar(&conn, "SELECT COUNT(*) AS n FROM flat_layout").await, 1);
    conn.close().await.ok();
    app.drop_tenant_db(&flat).await;

    // Downloads are cached by ETag: a changed object is read again, an unchanged one is not.
    let source = ScriptSource::parse(&format!("s3://{bucket}/plans/"), Some(s3.clone())).unwrap();
    let ScriptSource::S3(cache) = &source else { panic!("an S3 source") };
    let (p, t) = (
        landlord_protocol::PackageId::parse("10").unwrap(),
        landlord_protocol::SubscriptionTypeId::parse("10").unwrap(),
    );
    let first = source.load(landlord_worker::scripts::Dialect::MySql, p, t).await.unwrap();
    let again = source.load(landlord_worker::scripts::Dialect::MySql, p, t).await.unwrap();
    assert_eq!((first.sha256.as_str(), cache.cached()), (again.sha256.as_str(), 1));
    s3.put_object()
        .bucket(&bucket)
        .key("plans/mysql/package-10-type-10.sql")
        .body("SELECT 2;".as_bytes().to_vec().into())
        .send()
        .await
        .unwrap();
    let changed = source.load(landlord_worker::scripts::Dialect::MySql, p, t).await.unwrap();
    assert_eq!(changed.sql, "SELECT 2;");
    app.drop_tenant_db(&slug).await;
    app.drop_tenant_db(&missing).await;
}

/// Provisioning runs as a plan: the database, the DNS records and the stack start together, so the run
/// takes less than its steps one after another. Read from the progress events a dashboard sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_and_stack_run_at_the_same_time_and_the_run_is_shorter_than_its_steps() {
    let (_moto, _aws, _zone, _dir, app) = with_zone_and_stack().await;
    let slug = unique_slug("overlap");
    let tenant = app.buy(&slug, 20).await;
    let events = app
        .events_until(&tenant, |e| e.kind == EventKind::StatusChanged && e.status == Some(TenantStatus::Active))
        .await;

    let at = |kind: EventKind, step: &str| {
        events.iter().find(|e| e.kind == kind && e.step.as_deref() == Some(step)).map(|e| e.at).unwrap()
    };
    let (dns, stack) = ("configure_dns", "deploy_stack");
    // Each started before the other finished: they were in flight together.
    assert!(at(EventKind::StepStarted, dns) <= at(EventKind::StepSucceeded, stack), "{events:#?}");
    assert!(at(EventKind::StepStarted, stack) <= at(EventKind::StepSucceeded, dns), "{events:#?}");
    // The database did not wait for either, nor they for it.
    assert!(at(EventKind::StepStarted, "create_database") <= at(EventKind::StepSucceeded, stack));
    // Everything the health check needs had finished before it started.
    for need in ["apply_schema", dns, stack] {
        assert!(at(EventKind::StepSucceeded, need) <= at(EventKind::StepStarted, "health_check"), "{need}");
    }
    let first = events.iter().find(|e| e.kind == EventKind::StepStarted).unwrap().at;
    let wall = (events.last().unwrap().at - first).num_milliseconds();
    let sum: i64 = events
        .iter()
        .filter(|e| e.kind == EventKind::StepSucceeded)
        .map(|e| i64::try_from(e.duration_ms.unwrap()).unwrap())
        .sum();
    println!("provisioning: {wall} ms from the first step to active; the steps took {sum} ms together");
    assert!(wall < sum, "the run ({wall} ms) is shorter than its steps one after another ({sum} ms)");
    app.drop_tenant_db(&slug).await;
}
