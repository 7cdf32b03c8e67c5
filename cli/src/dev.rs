//! `landlord dev`: the whole of Landlord in one process on the embedded defaults (SQLite control plane,
//! `./sql-scripts`, MariaDB on 127.0.0.1), for trying it out and for the demo.

use std::path::Path;

use landlord_ingress::IngressConfig;
use landlord_worker::WorkerConfig;

use crate::DEV_WEBHOOK_SECRET;

pub async fn run(config: Option<&Path>) -> anyhow::Result<()> {
    let ingress = IngressConfig::load(config, Some(DEV_WEBHOOK_SECRET))?;
    let worker = WorkerConfig::load(config)?;
    let _nats = crate::nats_child::ensure(&ingress.nats_url).await?;
    let shutdown = landlord_cli::shutdown_on_signal();

    let listener = tokio::net::TcpListener::bind(ingress.http_addr).await?;
    println!("Landlord is listening on http://{}  (ctrl-c to stop)", listener.local_addr()?);
    let ingress_task = tokio::spawn(landlord_ingress::run(ingress, listener, shutdown.clone()));
    let worker_task = tokio::spawn(landlord_worker::run(worker, shutdown.clone()));
    let (i, w) = tokio::join!(ingress_task, worker_task);
    i??;
    w??;
    Ok(())
}
