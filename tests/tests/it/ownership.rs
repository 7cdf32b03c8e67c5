//! Touch only what Landlord created: a database, login, DNS record or stack that already carries a
//! tenant's name but was not made by Landlord is never adopted, changed or deleted. The tenant fails with
//! a reason a person can act on, and undo leaves the resource as it found it.

use landlord_protocol::{TenantSlug, TenantStatus};
use landlord_tests::{Engine, Infra, MotoServer, Options, TestApp, scalar, unique_slug};
use landlord_worker::{
    keepalive::NoKeepAlive,
    names::{DatabaseName, LoginName},
    steps::StepName,
    steps::{StepContext, StepDone, TenantPlan},
};
use sea_orm::ConnectionTrait;

use crate::infra::{create_zone, records, template, with_infra};

const NOT_OURS: &str = "was not created by Landlord";

fn plan(tenant: landlord_protocol::TenantId, slug: &str) -> TenantPlan {
    TenantPlan {
        id: tenant,
        slug: TenantSlug::parse(slug).unwrap(),
        package_id: landlord_protocol::PackageId::parse("10").unwrap(),
        subscription_type_id: landlord_protocol::SubscriptionTypeId::parse("10").unwrap(),
        previous: None,
    }
}

/// The same defect on both engines: a database with the tenant's name, holding someone's data.
async fn a_foreign_database_is_refused_and_kept(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let slug = unique_slug("foreigndb");
    let db = DatabaseName::for_slug(&TenantSlug::parse(&slug).unwrap());
    let admin = app.tenant_db.admin();
    let quoted = if engine == Engine::MariaDb { db.mysql() } else { db.pg() };
    admin.execute_unprepared(&format!("CREATE DATABASE {quoted}")).await.unwrap();

    let tenant = app.buy(&slug, 10).await;
    let row = app.wait_for_status(&tenant, TenantStatus::Failed).await;
    let reason = row.last_error.clone().unwrap();
    assert!(reason.contains(&format!("database {db} already exists")) && reason.contains(NOT_OURS), "{reason}");
    // Compensation ran (create_database is in the default policy) and still left it alone; no login was made.
    assert!(app.tenant_db.database_exists(&db).await.unwrap(), "{engine:?}: the foreign database is kept");
    let login = LoginName::for_slug(&TenantSlug::parse(&slug).unwrap());
    assert!(!app.tenant_db.login_exists(&login).await.unwrap(), "{engine:?}: no login was created");

    // Undo, asked directly, does not remove it either.
    let worker = landlord_worker::build(&app.worker_config, &app.bus, None).await.unwrap();
    let plan = plan(tenant, &slug);
    let ctx = StepContext {
        tenant: &plan,
        deps: &worker.runner.deps,
        alive: &NoKeepAlive,
        checkpoint: &landlord_worker::steps::no_checkpoint,
    };
    let step = landlord_worker::steps::step(StepName::CreateDatabase);
    assert!(matches!(step.undo(&ctx).unwrap().await, Ok(StepDone::Skipped(_))));
    assert!(app.tenant_db.database_exists(&db).await.unwrap(), "{engine:?}: undo kept the foreign database");
    app.tenant_db.drop_db(&db).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_database_on_mariadb_is_refused_and_kept() {
    Box::pin(a_foreign_database_is_refused_and_kept(Engine::MariaDb)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_database_on_postgres_is_refused_and_kept() {
    Box::pin(a_foreign_database_is_refused_and_kept(Engine::Postgres)).await;
}

/// A login or role with the tenant's name keeps its password: Landlord used to reset it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_login_keeps_its_password_and_gets_no_database() {
    for engine in [Engine::MariaDb, Engine::Postgres] {
        let app = TestApp::spawn(engine).await;
        let slug = unique_slug("foreignlogin");
        let login = LoginName::for_slug(&TenantSlug::parse(&slug).unwrap());
        let (create, secret) = match engine {
            // Another host than Landlord's '%': still the same name, still not Landlord's.
            Engine::MariaDb => (
                format!("CREATE USER '{login}'@'localhost' IDENTIFIED BY 'theirs-1'"),
                format!(
                    "SELECT COUNT(*) AS n FROM mysql.user WHERE user = '{login}' AND authentication_string = PASSWORD('theirs-1')"
                ),
            ),
            Engine::Postgres => (
                format!("CREATE ROLE {} LOGIN PASSWORD 'theirs-1'", login.pg()),
                format!(
                    "SELECT COUNT(*) AS n FROM pg_authid WHERE rolname = '{login}' AND rolpassword IS NOT NULL AND rolconnlimit = -1"
                ),
            ),
        };
        let admin = app.tenant_db.admin();
        admin.execute_unprepared(&create).await.unwrap();
        let before = scalar(admin, &secret).await;
        assert_eq!(before, 1);

        let tenant = app.buy(&slug, 10).await;
        let row = app.wait_for_status(&tenant, TenantStatus::Failed).await;
        let reason = row.last_error.unwrap();
        assert!(reason.contains(&format!("login {login} already exists")) && reason.contains(NOT_OURS), "{reason}");
        assert_eq!(scalar(admin, &secret).await, 1, "{engine:?}: the login's password and limits are unchanged");
        let db = DatabaseName::for_slug(&TenantSlug::parse(&slug).unwrap());
        assert!(!app.tenant_db.database_exists(&db).await.unwrap(), "{engine:?}: no database was created");
        let claim = app.store.resource_owner(landlord_worker::store::ResourceKind::Database, db.as_str()).await;
        assert_eq!(claim.unwrap(), None, "{engine:?}: nothing was claimed for a tenant refused at its login");
        let drop = match engine {
            Engine::MariaDb => format!("DROP USER '{login}'@'localhost'"),
            Engine::Postgres => format!("DROP ROLE {}", login.pg()),
        };
        admin.execute_unprepared(&drop).await.unwrap();
    }
}

/// A DNS record and a stack that carry a tenant's name but are someone else's: each tenant fails with the
/// reason, the record keeps its value, the stack its parameters, even with every step in the compensation
/// policy, and undo asked directly leaves both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_dns_record_or_stack_is_refused_and_kept() {
    let moto = MotoServer::start();
    let aws = moto.sdk_config().await;
    let zone = create_zone(&aws, "tenants.example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let template_path = dir.path().join("tenant.json");
    std::fs::write(&template_path, template("http://127.0.0.1:9/healthz", "")).unwrap();
    let infra =
        Infra { zone_id: Some(zone.clone()), template: Some(template_path.display().to_string()), ..Infra::default() };
    let app = TestApp::spawn_with(Options {
        aws: Some(aws.clone()),
        infra,
        worker: |cfg, infra| {
            with_infra(cfg, infra);
            cfg.compensate = vec![StepName::CreateDatabase, StepName::ConfigureDns, StepName::DeployStack];
        },
        ..Options::new(Engine::MariaDb)
    })
    .await;

    // Someone's record where the first tenant's hostname would go.
    let dns_slug = unique_slug("foreigndns");
    let host = format!("{dns_slug}.tenants.example.com");
    let r53 = aws_sdk_route53::Client::new(&aws);
    let theirs = "their-own-site.example.org";
    let record = aws_sdk_route53::types::ResourceRecordSet::builder()
        .name(&host)
        .r#type(aws_sdk_route53::types::RrType::Cname)
        .ttl(60)
        .resource_records(aws_sdk_route53::types::ResourceRecord::builder().value(theirs).build().unwrap())
        .build()
        .unwrap();
    let change = aws_sdk_route53::types::Change::builder()
        .action(aws_sdk_route53::types::ChangeAction::Create)
        .resource_record_set(record)
        .build()
        .unwrap();
    r53.change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(aws_sdk_route53::types::ChangeBatch::builder().changes(change).build().unwrap())
        .send()
        .await
        .unwrap();
    let dns_tenant = app.buy(&dns_slug, 10).await;
    let row = app.wait_for_status(&dns_tenant, TenantStatus::Failed).await;
    let reason = row.last_error.unwrap();
    assert!(reason.contains(&format!("DNS record {host} already exists")) && reason.contains(NOT_OURS), "{reason}");
    let found = records(&aws, &zone, &dns_slug).await;
    assert_eq!(found, vec![(format!("{host}."), "CNAME".into(), Some(60), vec![theirs.to_owned()])]);

    // Someone's stack with the second tenant's stack name.
    let stack_slug = unique_slug("foreignstack");
    let stack_name = format!("{stack_slug}-test-website");
    let cfn = aws_sdk_cloudformation::Client::new(&aws);
    let param = |k: &str, v: &str| {
        aws_sdk_cloudformation::types::Parameter::builder().parameter_key(k).parameter_value(v).build()
    };
    cfn.create_stack()
        .stack_name(&stack_name)
        .template_body(template("http://their.example.org/", ""))
        .parameters(param("TenantUrl", "https://their.example.org"))
        .parameters(param("ApiUrl", "https://api.their.example.org"))
        .parameters(param("DatabaseName", "theirs"))
        .parameters(param("Plan", "theirs"))
        .parameters(param("Environment", "theirs"))
        .send()
        .await
        .unwrap();
    let stack_tenant = app.buy(&stack_slug, 10).await;
    let row = app.wait_for_status(&stack_tenant, TenantStatus::Failed).await;
    let reason = row.last_error.unwrap();
    assert!(reason.contains(&format!("stack {stack_name} already exists")) && reason.contains(NOT_OURS), "{reason}");
    let stack = cfn.describe_stacks().stack_name(&stack_name).send().await.unwrap().stacks()[0].clone();
    assert_eq!(stack.stack_status().unwrap().as_str(), "CREATE_COMPLETE", "the foreign stack is not deleted");
    let plan_param = stack.parameters().iter().find(|p| p.parameter_key() == Some("Plan")).unwrap();
    assert_eq!(plan_param.parameter_value(), Some("theirs"), "the foreign stack is not updated");
    // The tenant's own records, made before the stack step, were undone by compensation.
    assert!(records(&aws, &zone, &stack_slug).await.is_empty(), "Landlord's own records were undone");

    // Undo asked directly for the foreign ones changes nothing.
    let worker = landlord_worker::build(&app.worker_config, &app.bus, Some(&aws)).await.unwrap();
    for (tenant, slug, step) in
        [(dns_tenant, &dns_slug, StepName::ConfigureDns), (stack_tenant, &stack_slug, StepName::DeployStack)]
    {
        let plan = plan(tenant, slug);
        let ctx = StepContext {
            tenant: &plan,
            deps: &worker.runner.deps,
            alive: &NoKeepAlive,
            checkpoint: &landlord_worker::steps::no_checkpoint,
        };
        let step = landlord_worker::steps::step(step);
        assert!(matches!(step.undo(&ctx).unwrap().await, Ok(StepDone::Skipped(_))));
    }
    assert_eq!(records(&aws, &zone, &dns_slug).await.len(), 1);
    let stack = cfn.describe_stacks().stack_name(&stack_name).send().await.unwrap().stacks()[0].clone();
    assert_eq!(stack.stack_status().unwrap().as_str(), "CREATE_COMPLETE");
    app.drop_tenant_db(&dns_slug).await;
    app.drop_tenant_db(&stack_slug).await;
}

/// A permanent failure stops the steps running beside it: a foreign database fails the tenant at once
/// even while Route 53 (here an address that never answers, with a 300 s DNS budget) keeps the DNS step
/// waiting. The DNS step is recorded as stopped, so a retry runs it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_stops_the_steps_in_flight_beside_it() {
    let aws = landlord_tests::sdk_config_at(&landlord_tests::black_hole().await).await;
    fn slow_dns(cfg: &mut landlord_worker::WorkerConfig, infra: &Infra) {
        with_infra(cfg, infra);
        cfg.dns_budget = std::time::Duration::from_secs(300);
    }
    let infra = Infra { zone_id: Some("ZHANGS0000001".into()), ..Infra::default() };
    let app =
        TestApp::spawn_with(Options { aws: Some(aws), worker: slow_dns, infra, ..Options::new(Engine::MariaDb) }).await;
    let slug = unique_slug("stopdns");
    let db = DatabaseName::for_slug(&TenantSlug::parse(&slug).unwrap());
    app.tenant_db.admin().execute_unprepared(&format!("CREATE DATABASE {}", db.mysql())).await.unwrap();

    let tenant = app.buy(&slug, 10).await;
    // Well within the DNS budget: the run did not wait for the DNS step.
    let row = app.wait_for_status(&tenant, TenantStatus::Failed).await;
    assert!(row.last_error.unwrap().contains(NOT_OURS));
    let dns = app.store.step(&tenant, StepName::ConfigureDns).await.unwrap().unwrap();
    assert_eq!((dns.status.as_str(), dns.error_code.as_deref()), ("failed", Some("cancelled")), "{dns:?}");
    assert!(app.store.step(&tenant, StepName::HealthCheck).await.unwrap().is_none(), "nothing after them started");
    app.tenant_db.drop_db(&db).await.unwrap();
}
