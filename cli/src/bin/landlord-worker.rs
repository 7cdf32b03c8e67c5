//! `landlord-worker`: one worker process, configured by `LANDLORD_*` (and `LANDLORD_CONFIG`). Run as
//! many as needed; they share one JetStream consumer.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    landlord_cli::init_tracing();
    let file = std::env::var_os("LANDLORD_CONFIG").map(std::path::PathBuf::from);
    let cfg = landlord_worker::WorkerConfig::load(file.as_deref())?;
    landlord_worker::run(cfg, landlord_cli::shutdown_on_signal()).await
}
