//! `landlord scripts check [DIR]`: every plan script is correctly named and splits cleanly, before it
//! can fail a customer's provisioning.

use std::path::PathBuf;

use landlord_worker::scripts::{Dialect, split};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Validates names (`package-{n}-type-{n}.sql` under `mysql/` and `postgres/`) and splitting.
    Check {
        #[arg(default_value = "sql-scripts")]
        dir: PathBuf,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    let Command::Check { dir } = cmd;
    let mut problems = Vec::new();
    let mut checked = 0;
    for dialect in [Dialect::MySql, Dialect::Postgres] {
        let folder = dir.join(dialect.as_str());
        let Ok(entries) = std::fs::read_dir(&folder) else {
            problems.push(format!("{}: missing folder", folder.display()));
            continue;
        };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            if !valid_name(&name) {
                problems.push(format!(
                    "{}: name must be package-<n>-type-<n>.sql",
                    path.display()
                ));
                continue;
            }
            match std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|sql| split(&sql, dialect).map_err(|e| e.to_string()))
            {
                Ok(statements) if statements.is_empty() => {
                    problems.push(format!("{}: no statements", path.display()))
                }
                Ok(statements) => {
                    checked += 1;
                    println!(
                        "ok  {:<40} {:>3} statements",
                        path.display(),
                        statements.len()
                    );
                }
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            }
        }
    }
    for p in &problems {
        eprintln!("bad {p}");
    }
    anyhow::ensure!(
        problems.is_empty(),
        "{} problem(s) in {}",
        problems.len(),
        dir.display()
    );
    println!("{checked} scripts ok");
    Ok(())
}

/// `package-{n}-type-{n}.sql` with positive numbers.
fn valid_name(name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix("package-")
        .and_then(|r| r.strip_suffix(".sql"))
    else {
        return false;
    };
    let Some((package, kind)) = rest.split_once("-type-") else {
        return false;
    };
    [package, kind]
        .iter()
        .all(|n| landlord_protocol::PackageId::parse(n).is_ok())
}
