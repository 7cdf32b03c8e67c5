//! The admin API as the CLI calls it: `LANDLORD_API_URL` (default `http://127.0.0.1:8080`) with the token in
//! `LANDLORD_ADMIN_TOKEN`. An API error is shown as the API gives it (code and message) and ends the
//! command with a non-zero exit.

use reqwest::Method;
use serde_json::Value;

#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// The ingress's address.
    #[arg(long = "api", env = "LANDLORD_API_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An admin (or, to read, viewer) token of LANDLORD_ADMIN_TOKENS.
    #[arg(long, env = "LANDLORD_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug)]
pub struct Api {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Api {
    pub fn new(args: &ApiArgs) -> anyhow::Result<Self> {
        let token = args.token.clone().filter(|t| !t.is_empty()).ok_or_else(|| {
            anyhow::anyhow!("set LANDLORD_ADMIN_TOKEN (or --token) to a token of the ingress's LANDLORD_ADMIN_TOKENS")
        })?;
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build()?;
        Ok(Self { http, url: args.url.trim_end_matches('/').to_owned(), token })
    }

    /// Calls the API; the JSON answer, or an error made of the API's own code and message.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> anyhow::Result<Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.url)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let res = req.send().await.map_err(|e| anyhow::anyhow!("the admin API at {} did not answer: {e}", self.url))?;
        let status = res.status();
        let text = res.text().await?;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let code = json["error"]["code"].as_str().unwrap_or("unknown");
            let message = json["error"]["message"].as_str().unwrap_or(&text);
            anyhow::bail!("{status}: {message} ({code})");
        }
        Ok(json)
    }
}
