//! Where plan scripts come from. A script is named by its plan,
//! `{root}/{dialect}/package-{package_id}-type-{subscription_type_id}.sql`, so no request text ever
//! becomes part of a path.

use std::path::PathBuf;

use landlord_protocol::{PackageId, SubscriptionTypeId};
use sha2::{Digest, Sha256};

use super::Dialect;

#[derive(Debug, Clone)]
pub enum ScriptSource {
    Folder(PathBuf),
}

/// A loaded script: its text, where it came from, and a checksum that marks it as applied.
#[derive(Debug, Clone)]
pub struct PlanScript {
    pub name: String,
    pub location: String,
    pub sql: String,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("no schema script for this plan: looked for {0}")]
    Missing(String),
    #[error("cannot read schema script {location}: {source}")]
    Read {
        location: String,
        source: std::io::Error,
    },
    #[error("schema script {0} is not UTF-8 text")]
    NotText(String),
}

impl ScriptError {
    /// A missing or unreadable-as-text script will not fix itself; an I/O hiccup might.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Self::Read { .. })
    }
}

/// `package-{p}-type-{t}.sql`.
pub fn script_name(package: PackageId, kind: SubscriptionTypeId) -> String {
    format!("package-{package}-type-{kind}.sql")
}

impl ScriptSource {
    pub async fn load(
        &self,
        dialect: Dialect,
        package: PackageId,
        kind: SubscriptionTypeId,
    ) -> Result<PlanScript, ScriptError> {
        let name = script_name(package, kind);
        match self {
            Self::Folder(root) => {
                let path = root.join(dialect.as_str()).join(&name);
                let location = path.display().to_string();
                let bytes = match tokio::fs::read(&path).await {
                    Ok(b) => b,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(ScriptError::Missing(location));
                    }
                    Err(source) => return Err(ScriptError::Read { location, source }),
                };
                let sha256 = hex::encode(Sha256::digest(&bytes));
                let sql =
                    String::from_utf8(bytes).map_err(|_| ScriptError::NotText(location.clone()))?;
                Ok(PlanScript {
                    name,
                    location,
                    sql,
                    sha256,
                })
            }
        }
    }
}
