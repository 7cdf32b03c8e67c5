//! `landlord demo-checkout`: what Stripe sends when a customer completes a checkout, signed with the
//! webhook secret, posted to an ingress.

use landlord_protocol::TenantId;
use secrecy::SecretString;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ingress.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The tenant's subdomain.
    #[arg(long)]
    slug: String,
    #[arg(long, default_value = "Demo Store")]
    store_name: String,
    #[arg(long, default_value = "owner@demo-store.example")]
    email: String,
    /// The plan's package (see plans.toml: 10 Essential, 20 Professional, 30 Premium, 40 Enterprise).
    #[arg(long, default_value_t = 20)]
    package: u32,
    /// The plan's subscription type (10 General, 20 Made to Measure).
    #[arg(long = "type", default_value_t = 10)]
    subscription_type: u32,
    /// Webhook secret to sign with (falls back to the development secret).
    #[arg(long, env = "LANDLORD_STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    secret: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let session_id = format!("cs_demo_{}", uuid::Uuid::new_v4().simple());
    let event = serde_json::json!({
        "id": format!("evt_demo_{}", uuid::Uuid::new_v4().simple()),
        "object": "event",
        "api_version": "2025-06-30.basil",
        "created": chrono::Utc::now().timestamp(),
        "livemode": false,
        "type": "checkout.session.completed",
        "data": {"object": {
            "id": session_id, "object": "checkout.session", "mode": "subscription",
            "status": "complete", "payment_status": "paid",
            "customer_details": {"email": args.email},
            "metadata": {
                "subdomain": args.slug, "store_name": args.store_name,
                "package_id": args.package.to_string(), "subscription_type_id": args.subscription_type.to_string(),
            }
        }}
    });
    let body = serde_json::to_vec(&event)?;
    let secret = SecretString::from(args.secret.unwrap_or_else(|| crate::DEV_WEBHOOK_SECRET.to_owned()));
    let signature = landlord_ingress::stripe::signature::sign(&body, &secret, chrono::Utc::now().timestamp());
    let res = reqwest::Client::new()
        .post(format!("{}/webhooks/stripe", args.url.trim_end_matches('/')))
        .header("Stripe-Signature", signature)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = res.status();
    let answer: serde_json::Value = res.json().await.unwrap_or_default();
    anyhow::ensure!(status.is_success(), "the ingress answered {status}: {answer}");
    eprintln!("checkout {session_id} accepted: {answer}");
    println!("{}", TenantId::from_checkout_session(&session_id));
    Ok(())
}
