//! `landlord dev`: the whole of Landlord in one process on the embedded defaults (SQLite control plane,
//! `./sql-scripts`, MariaDB on 127.0.0.1), for trying it out and for the demo.

use std::path::Path;

use landlord_ingress::IngressConfig;
use landlord_worker::WorkerConfig;

use crate::DEV_WEBHOOK_SECRET;

pub async fn run(config: Option<&Path>) -> anyhow::Result<()> {
    let mut ingress = IngressConfig::load(config, Some(DEV_WEBHOOK_SECRET))?;
    let mut worker = WorkerConfig::load(config)?;
    // One process, one control plane: the admin API reads the worker's.
    if ingress.database_url.is_none() {
        ingress.database_url = Some(worker.database_url.clone());
    }
    if worker.secret_keys.is_none() {
        worker.secret_keys = Some(dev_secret_key()?);
    }
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

/// Where `landlord dev` keeps the key it made for itself when `LANDLORD_SECRET_KEYS` is unset.
const DEV_KEY_FILE: &str = ".landlord/secret.keys";

/// A development key, made once into `.landlord/secret.keys` (mode 0600) and reused after. Only `landlord
/// dev` does this; `landlord-worker` refuses to start without `LANDLORD_SECRET_KEYS`.
fn dev_secret_key() -> anyhow::Result<secrecy::SecretString> {
    let path = Path::new(DEV_KEY_FILE);
    let (_, created) = landlord_worker::secret_box::SecretKeys::load_or_create_dev_file(path)?;
    if created {
        println!("made a development secret key in {DEV_KEY_FILE} (mode 0600); deployments set LANDLORD_SECRET_KEYS");
    }
    Ok(std::fs::read_to_string(path)?.trim().replace('\n', ",").into())
}
