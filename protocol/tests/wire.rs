//! Round trips over the checked-in JSON vectors, and the checked-in JSON Schema kept in step with the
//! types. Set `LANDLORD_UPDATE_SCHEMA=1` to rewrite the schema files after an intended change.

use std::path::PathBuf;

use landlord_protocol::{Action, Command, CommandKind, DecodeError, EventKind, ProgressEvent, TenantStatus};

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name)
}

#[test]
fn command_vectors_round_trip() {
    let mut seen = 0;
    for entry in std::fs::read_dir(dir("vectors")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let original: serde_json::Value = serde_json::from_str(&text).unwrap();
        if name.starts_with("command-") {
            let cmd = Command::decode(&subject_of(&original), text.as_bytes()).unwrap();
            assert_eq!(serde_json::to_value(&cmd).unwrap(), original, "{name}");
        } else if name.starts_with("progress-") {
            let ev: ProgressEvent = serde_json::from_str(&text).unwrap();
            assert_eq!(serde_json::to_value(&ev).unwrap(), original, "{name}");
        } else {
            continue;
        }
        seen += 1;
    }
    assert!(seen >= 4, "expected the checked-in vectors, read {seen}");
}

fn subject_of(v: &serde_json::Value) -> String {
    format!("landlord.commands.{}.{}", v["kind"].as_str().unwrap(), v["tenant_id"].as_str().unwrap())
}

#[test]
fn provision_vector_has_the_documented_fields() {
    let text = std::fs::read_to_string(dir("vectors/command-provision.json")).unwrap();
    let cmd = Command::decode(&subject_of(&serde_json::from_str(&text).unwrap()), text.as_bytes()).unwrap();
    assert_eq!(cmd.action.kind(), CommandKind::Provision);
    let Action::Provision(spec) = cmd.action else { panic!("not a provision") };
    assert_eq!(spec.slug.as_str(), "acme-bakery");
    assert_eq!(spec.package_id.get(), 2);
}

#[test]
fn a_refused_purchase_names_the_stripe_purchase_and_refuses_hostile_ids() {
    let text = std::fs::read_to_string(dir("vectors/command-refused-purchase.json")).unwrap();
    let good: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cmd = Command::decode(&subject_of(&good), text.as_bytes()).unwrap();
    assert_eq!(cmd.action.kind(), CommandKind::RefusedPurchase);
    assert_eq!(cmd.subject(), format!("landlord.commands.refused_purchase.{}", cmd.tenant_id));
    let Action::RefusedPurchase(refused) = cmd.action else { panic!("not a refused purchase") };
    assert_eq!(refused.purchase.customer.unwrap().as_str(), "cus_NffrFeUfNV2Hib");

    let mut hostile = good.clone();
    hostile["purchase"]["customer"] = "cus_1'; DROP TABLE tenants; --".into();
    let err = Command::decode(&subject_of(&good), hostile.to_string().as_bytes()).unwrap_err();
    assert!(err.to_string().contains("Stripe id"), "{err}");
}

#[test]
fn decode_refuses_bad_payloads_with_reasons() {
    let text = std::fs::read_to_string(dir("vectors/command-provision.json")).unwrap();
    let good: serde_json::Value = serde_json::from_str(&text).unwrap();
    let subject = subject_of(&good);

    let mut hostile = good.clone();
    hostile["slug"] = "x'; DROP DATABASE test; --".into();
    let err = Command::decode(&subject, hostile.to_string().as_bytes()).unwrap_err();
    assert!(err.to_string().contains("subdomain"), "{err}");

    let mut future = good.clone();
    future["v"] = 2.into();
    assert!(matches!(Command::decode(&subject, future.to_string().as_bytes()), Err(DecodeError::Version(2))));

    let other = subject.replace(good["tenant_id"].as_str().unwrap(), "6f1c0a84-0000-4000-8000-000000000000");
    assert!(matches!(Command::decode(&other, text.as_bytes()), Err(DecodeError::TenantMismatch { .. })));
    let wrong_kind = subject.replace(".provision.", ".suspend.");
    assert!(matches!(Command::decode(&wrong_kind, text.as_bytes()), Err(DecodeError::KindMismatch { .. })));
    assert!(matches!(Command::decode(&subject, b"not json"), Err(DecodeError::Json(_))));
}

#[test]
fn statuses_parse_back() {
    for s in ["pending", "provisioning", "active", "suspended", "awaiting_operator", "failed", "offboarding", "deleted"]
    {
        assert_eq!(TenantStatus::parse(s).unwrap().as_str(), s);
    }
    assert_eq!(serde_json::to_value(EventKind::StepRetrying).unwrap(), "step_retrying");
}

#[test]
fn checked_in_schema_matches_the_types() {
    for (file, schema) in [
        ("command.schema.json", landlord_protocol::command_schema()),
        ("progress.schema.json", landlord_protocol::progress_schema()),
    ] {
        let generated = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        let path = dir("schema").join(file);
        if std::env::var_os("LANDLORD_UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        // Compared as JSON values: key order depends on serde_json features other crates turn on.
        let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap_or_default();
        assert_eq!(parse(&checked_in), parse(&generated), "{file} is stale: run with LANDLORD_UPDATE_SCHEMA=1");
    }
}

#[test]
fn a_subscription_event_keeps_its_own_time_beside_the_commands() {
    let text = std::fs::read_to_string(dir("vectors/command-stripe-subscription.json")).unwrap();
    let cmd = Command::decode(&subject_of(&serde_json::from_str(&text).unwrap()), text.as_bytes()).unwrap();
    assert_eq!(cmd.action.kind(), CommandKind::StripeSubscription);
    let Action::StripeSubscription(ev) = &cmd.action else { panic!("not a subscription event") };
    assert_eq!(
        cmd.tenant_id,
        landlord_protocol::TenantId::for_subscription(ev.subscription.as_str()),
        "keyed by subscription"
    );
    assert!(ev.event_created < cmd.created);
    assert_eq!(
        ev.snapshot.as_ref().unwrap().status.desired(false),
        landlord_protocol::Desired::Active { payment_overdue: true }
    );
}
