//! `--check-config`: the binaries print their effective settings with secrets masked and say whether they
//! are valid, so an operator finds a typo before a deployment instead of in a silently wrong behaviour.

use std::process::Command;

use landlord_tests::chaos::workspace_bin;

/// Runs `bin --check-config` with only `env` set (and PATH); returns success and everything printed.
fn check(bin: &str, env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(workspace_bin(bin))
        .arg("--check-config")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

const KEY: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[test]
fn the_worker_prints_its_settings_without_secrets_and_refuses_typos() {
    let base = [
        ("LANDLORD_SECRET_KEYS", KEY),
        ("LANDLORD_DATABASE_URL", "postgres://landlord:cp-s3cret@db.internal/landlord"),
        ("LANDLORD_TENANT_DB_URL", "mysql://admin:tenant-s3cret@tenants.internal:3306"),
        ("LANDLORD_NATS_URL", "nats://worker:nats-s3cret@nats.internal:4222"),
    ];
    let (ok, out) = check("landlord-worker", &base);
    assert!(ok, "{out}");
    assert!(out.contains("settings are valid") && out.contains("db.internal") && out.contains("compensate"), "{out}");
    for secret in ["cp-s3cret", "tenant-s3cret", "nats-s3cret", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"] {
        assert!(!out.contains(secret), "{secret} printed: {out}");
    }

    let with = |extra: (&'static str, &'static str)| {
        let mut env = base.to_vec();
        env.push(extra);
        check("landlord-worker", &env)
    };
    let (ok, out) = with(("LANDLORD_COMPENSATE", "create_database,create_databse"));
    assert!(!ok && out.contains("LANDLORD_COMPENSATE") && out.contains("\"create_databse\" is not a step"), "{out}");
    let (ok, out) = with(("LANDLORD_STEP_RETRY__HELTH_CHECK__MAX_ATTEMPTS", "3"));
    assert!(!ok && out.contains("LANDLORD_STEP_RETRY__helth_check"), "{out}");
    let (ok, out) = with(("LANDLORD_LEASE_TTL_SECS", "0"));
    assert!(!ok && out.contains("LANDLORD_LEASE_TTL_SECS must be at least 1"), "{out}");
    let (ok, out) = with(("LANDLORD_DNS_TARGET", "lb.example.net"));
    assert!(!ok && out.contains("LANDLORD_ROUTE53_ZONE_ID"), "{out}");
    let (ok, out) = with(("LANDLORD_RETRY__MAX_ATEMPTS", "3"));
    assert!(!ok && out.contains("max_atempts"), "a typo in a retry key is named, not ignored: {out}");
    let (ok, out) = with(("LANDLORD_COMPENSATE", "none"));
    assert!(ok && out.contains("compensate: []"), "{out}");
    let (ok, out) = check("landlord-worker", &base[1..]);
    assert!(!ok && out.contains("LANDLORD_SECRET_KEYS is not set"), "{out}");
}

#[test]
fn the_ingress_prints_its_settings_without_secrets() {
    let env = [
        ("LANDLORD_STRIPE_WEBHOOK_SECRET", "whsec_hook-s3cret"),
        ("LANDLORD_ADMIN_TOKENS", "ops:admin:token-s3cret-0123456789"),
        ("LANDLORD_NATS_URL", "nats://ingress:nats-s3cret@nats.internal:4222"),
    ];
    let (ok, out) = check("landlord-ingress", &env);
    assert!(ok && out.contains("settings are valid") && out.contains("nats.internal"), "{out}");
    for secret in ["hook-s3cret", "token-s3cret", "nats-s3cret"] {
        assert!(!out.contains(secret), "{secret} printed: {out}");
    }
    let mut bad_nats = env.to_vec();
    bad_nats[2] = ("LANDLORD_NATS_URL", "nats://ingress:nats-s3cret@[nats");
    let (ok, out) = check("landlord-ingress", &bad_nats);
    assert!(!ok && out.contains("LANDLORD_NATS_URL") && !out.contains("nats-s3cret"), "{out}");
    let (ok, out) = check("landlord-ingress", &env[1..]);
    assert!(!ok && out.contains("LANDLORD_STRIPE_WEBHOOK_SECRET is required"), "{out}");
}
