//! `landlord-ingress`: the HTTP edge alone, configured by `LANDLORD_*` (and `LANDLORD_CONFIG`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    landlord_cli::init_tracing();
    let file = std::env::var_os("LANDLORD_CONFIG").map(std::path::PathBuf::from);
    let cfg = landlord_ingress::IngressConfig::load(file.as_deref(), None)?;
    let listener = tokio::net::TcpListener::bind(cfg.http_addr).await?;
    landlord_ingress::run(cfg, listener, landlord_cli::shutdown_on_signal()).await
}
