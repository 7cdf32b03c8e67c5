//! `landlord-ingress`: the HTTP edge alone, configured by `LANDLORD_*` (and `LANDLORD_CONFIG`).
//! `--check-config` prints the effective settings (secrets masked) and exits: 0 when they are valid, 1
//! with the reason when not.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let file = std::env::var_os("LANDLORD_CONFIG").map(std::path::PathBuf::from);
    if std::env::args().skip(1).any(|a| a == "--check-config") {
        let cfg = landlord_ingress::IngressConfig::load(file.as_deref(), None)?;
        println!("{cfg:#?}\nthe ingress's settings are valid");
        return Ok(());
    }
    let _traces = landlord_cli::init_tracing_for("landlord-ingress")?;
    let cfg = landlord_ingress::IngressConfig::load(file.as_deref(), None)?;
    let listener = tokio::net::TcpListener::bind(cfg.http_addr).await?;
    landlord_ingress::run(cfg, listener, landlord_cli::shutdown_on_signal()).await
}
