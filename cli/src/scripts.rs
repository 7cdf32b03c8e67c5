//! `landlord scripts check|upload`: plan scripts are checked (names, splitting) before they can fail a
//! customer's provisioning, and uploaded to S3 only when every one passes.

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use landlord_worker::{infra, scripts::upload};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Validates names (`package-{n}-type-{n}.sql` under `mysql/` and `postgres/`) and splitting.
    Check {
        #[arg(default_value = "sql-scripts")]
        dir: PathBuf,
    },
    /// Checks, then uploads DIR to `s3://bucket/prefix/` (nothing is uploaded if any file is wrong).
    Upload { dir: PathBuf, destination: String },
}

fn checked(dir: &std::path::Path) -> anyhow::Result<Vec<upload::Upload>> {
    upload::check_folder(dir).map_err(|problems| {
        for p in &problems {
            eprintln!("bad {p}");
        }
        anyhow::anyhow!("{} problem(s) in {}; nothing was uploaded", problems.len(), dir.display())
    })
}

pub async fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Check { dir } => {
            let uploads = checked(&dir)?;
            for u in &uploads {
                println!("ok  {:<40} {:>3} statements", u.key, u.statements);
            }
            println!("{} scripts ok", uploads.len());
        }
        Command::Upload { dir, destination } => {
            let (bucket, prefix) = infra::parse_s3_url(&destination)
                .ok_or_else(|| anyhow::anyhow!("destination must be s3://bucket/prefix/"))?;
            let uploads = checked(&dir)?;
            let client = infra::s3_client(&infra::sdk_config_from_env().await);
            let bar = ProgressBar::new(uploads.len() as u64);
            bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").expect("template"));
            upload::upload(&client, &bucket, &prefix, &uploads, |u| {
                bar.set_message(u.key.clone());
                bar.inc(1);
            })
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
            bar.finish_and_clear();
            println!("{:<44} {:>10} {:>11}", "key", "bytes", "statements");
            for u in &uploads {
                let key = format!("{}{}", infra::folder_prefix(&prefix), u.key);
                println!("{key:<44} {:>10} {:>11}", u.bytes, u.statements);
            }
            println!("{} scripts uploaded to s3://{bucket}/{prefix}", uploads.len());
        }
    }
    Ok(())
}
