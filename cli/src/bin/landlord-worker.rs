//! `landlord-worker`: one worker process, configured by `LANDLORD_*` (and `LANDLORD_CONFIG`). Run as
//! many as needed; they share one JetStream consumer. `--check-config` prints the effective settings
//! (secrets masked) and exits: 0 when they are valid, 1 with the reason when not.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let file = std::env::var_os("LANDLORD_CONFIG").map(std::path::PathBuf::from);
    if std::env::args().skip(1).any(|a| a == "--check-config") {
        let cfg = landlord_worker::WorkerConfig::load(file.as_deref())?;
        cfg.parsed_secret_keys()?;
        println!("{cfg:#?}\nthe worker's settings are valid");
        return Ok(());
    }
    let _traces = landlord_cli::init_tracing_for("landlord-worker")?;
    let cfg = landlord_worker::WorkerConfig::load(file.as_deref())?;
    landlord_worker::run(cfg, landlord_cli::shutdown_on_signal()).await
}
