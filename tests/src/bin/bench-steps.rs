//! One provisioning's wall time with the step plan (database, DNS and stack side by side) and with the
//! same steps one after another, on the local emulators: MariaDB, moto for Route 53 and CloudFormation,
//! a private nats-server. Runs are interleaved so both see the same machine.
//!
//! `cargo run -p landlord-tests --bin bench-steps -- [RUNS]` (default 15 of each, debug build); needs what
//! `scripts/test` starts (MariaDB on 127.0.0.1:3306, `moto_server` and `nats-server` on the PATH or in
//! `~/.cache/landlord/venv`).

use std::time::{Duration, Instant};

use landlord_protocol::{
    Action, Command, CommandId, ContactEmail, PackageId, ProvisionSpec, StoreName, SubscriptionTypeId, TenantId,
    TenantSlug,
};
use landlord_tests::{Engine, Infra, MotoServer, Options, TestApp, unique_slug};
use landlord_worker::{Outcome, WorkerConfig};

const TEMPLATE: &str = r#"{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Parameters": {
    "TenantUrl": {"Type": "String"}, "ApiUrl": {"Type": "String"}, "DatabaseName": {"Type": "String"},
    "Plan": {"Type": "String"}, "Environment": {"Type": "String"}
  },
  "Resources": {
    "Events": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Fn::Sub": "${DatabaseName}-${Environment}-events"}}}
  },
  "Outputs": {"EventsTopic": {"Value": {"Ref": "Events"}}}
}"#;

fn with_infra(cfg: &mut WorkerConfig, infra: &Infra) {
    cfg.route53_zone_id = infra.zone_id.clone();
    cfg.dns_target = Some("lb.tenants.example.net".into());
    cfg.stack_template = infra.template.clone();
    cfg.dns_budget = Duration::from_secs(60);
}

fn provision(slug: &str) -> Command {
    let spec = ProvisionSpec {
        slug: TenantSlug::parse(slug).unwrap(),
        store_name: StoreName::parse("Bench").unwrap(),
        contact_email: ContactEmail::parse("bench@example.com").unwrap(),
        package_id: PackageId::parse("20").unwrap(),
        subscription_type_id: SubscriptionTypeId::parse("10").unwrap(),
        purchase: None,
        slug_derived: false,
    };
    let id = CommandId::parse(&format!("admin:bench-{slug}")).unwrap();
    Command::new(id, TenantId::new_random(), "bench", Action::Provision(spec))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(15);
    let moto = MotoServer::start();
    let aws = moto.sdk_config().await;
    let r53 = aws_sdk_route53::Client::new(&aws);
    let zone = r53.create_hosted_zone().name("tenants.example.com").caller_reference("bench").send().await.unwrap();
    let zone = zone.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_owned();
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("tenant.json");
    std::fs::write(&template, TEMPLATE).unwrap();
    let infra = Infra { zone_id: Some(zone), template: Some(template.display().to_string()), ..Infra::default() };
    let app = TestApp::spawn_with(Options {
        aws: Some(aws.clone()),
        worker: with_infra,
        infra,
        in_process_worker: false,
        ..Options::new(Engine::MariaDb)
    })
    .await;
    let parallel = landlord_worker::build(&app.worker_config, &app.bus, Some(&aws)).await.unwrap();
    let mut sequential = landlord_worker::build(&app.worker_config, &app.bus, Some(&aws)).await.unwrap();
    sequential.runner.flows.provision = sequential.runner.flows.provision.one_by_one();

    let (mut with_plan, mut one_by_one) = (Vec::new(), Vec::new());
    for i in 0..runs * 2 {
        let (worker, times) = if i % 2 == 0 { (&parallel, &mut with_plan) } else { (&sequential, &mut one_by_one) };
        let slug = unique_slug("bench");
        let cmd = provision(&slug);
        let started = Instant::now();
        let outcome = worker.handle(&cmd.subject(), &cmd.to_json(), 1).await;
        let took = started.elapsed();
        assert_eq!(outcome, Outcome::Completed, "run {i}");
        // The first of each is warm-up (connections, moto's first calls).
        if i >= 2 {
            times.push(took);
        }
        app.drop_tenant_db(&slug).await;
    }
    let (p, s) = (median(with_plan.clone()), median(one_by_one.clone()));
    println!(
        "provisioning on MariaDB + moto (Route 53, CloudFormation), {} runs each after one warm-up:",
        with_plan.len()
    );
    println!("  step plan (database, DNS, stack side by side): median {:.0} ms", p.as_secs_f64() * 1000.0);
    println!("  one step after another:                        median {:.0} ms", s.as_secs_f64() * 1000.0);
    println!("  ratio plan / one by one: {:.2}", p.as_secs_f64() / s.as_secs_f64());
}
