//! Where plan scripts come from: a folder, or S3 (`s3://bucket/prefix/`). A script is named by its plan,
//! `{root}/{dialect}/package-{package_id}-type-{subscription_type_id}.sql`, so no request text ever
//! becomes part of a path or key. When the engine's folder has no script for the plan, one lying flat
//! under the root (`{root}/package-10-type-10.sql`, the layout of a product with one engine) is used.
//! Scripts from S3 are cached by ETag: a repeat asks S3 only whether the object changed.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use landlord_protocol::{PackageId, SubscriptionTypeId};
use sha2::{Digest, Sha256};

use super::Dialect;

#[derive(Debug, Clone)]
pub enum ScriptSource {
    Folder(PathBuf),
    S3(S3Scripts),
}

/// Scripts under `s3://bucket/prefix/`.
#[derive(Debug, Clone)]
pub struct S3Scripts {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    /// Key → (ETag, script).
    cache: Arc<Mutex<HashMap<String, (String, PlanScript)>>>,
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
    Read { location: String, source: std::io::Error },
    #[error("schema script {0} is not UTF-8 text")]
    NotText(String),
    #[error("cannot read schema script {location}: {message}")]
    Remote { location: String, message: String, transient: bool },
}

impl ScriptError {
    /// A missing or non-text script will not fix itself; an I/O hiccup or an S3 outage might.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Read { .. } => false,
            Self::Remote { transient, .. } => !transient,
            Self::Missing(_) | Self::NotText(_) => true,
        }
    }
}

/// `package-{p}-type-{t}.sql`.
pub fn script_name(package: PackageId, kind: SubscriptionTypeId) -> String {
    format!("package-{package}-type-{kind}.sql")
}

/// `upgrade-package-{p}-type-{t}-to-package-{p2}-type-{t2}.sql`: what a tenant's database needs when it
/// moves from one plan to another, applied once, beside the plan scripts.
pub fn upgrade_name(from: (PackageId, SubscriptionTypeId), to: (PackageId, SubscriptionTypeId)) -> String {
    format!("upgrade-package-{}-type-{}-to-package-{}-type-{}.sql", from.0, from.1, to.0, to.1)
}

fn plan_script(name: String, location: String, bytes: Vec<u8>) -> Result<PlanScript, ScriptError> {
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let sql = String::from_utf8(bytes).map_err(|_| ScriptError::NotText(location.clone()))?;
    Ok(PlanScript { name, location, sql, sha256 })
}

impl ScriptSource {
    /// A folder path, or `s3://bucket/prefix/` read with `s3` (required then).
    pub fn parse(location: &str, s3: Option<aws_sdk_s3::Client>) -> Result<Self, String> {
        match crate::infra::parse_s3_url(location) {
            Some((bucket, prefix)) => {
                let client = s3.ok_or("S3 scripts need the AWS configuration")?;
                let prefix = crate::infra::folder_prefix(&prefix);
                Ok(Self::S3(S3Scripts { client, bucket, prefix, cache: Arc::default() }))
            }
            None if location.starts_with("s3:") => {
                Err(format!("LANDLORD_SCRIPTS {location:?} is not s3://bucket/prefix/"))
            }
            None => Ok(Self::Folder(PathBuf::from(location))),
        }
    }

    pub async fn load(
        &self,
        dialect: Dialect,
        package: PackageId,
        kind: SubscriptionTypeId,
    ) -> Result<PlanScript, ScriptError> {
        self.load_named(dialect, script_name(package, kind)).await
    }

    /// The upgrade script between two plans; [`ScriptError::Missing`] when there is none.
    pub async fn load_upgrade(
        &self,
        dialect: Dialect,
        from: (PackageId, SubscriptionTypeId),
        to: (PackageId, SubscriptionTypeId),
    ) -> Result<PlanScript, ScriptError> {
        self.load_named(dialect, upgrade_name(from, to)).await
    }

    /// `name` from the engine's folder, or else flat under the root.
    async fn load_named(&self, dialect: Dialect, name: String) -> Result<PlanScript, ScriptError> {
        match self {
            Self::Folder(root) => {
                let in_engine = root.join(dialect.as_str()).join(&name);
                match read_file(name.clone(), &in_engine).await {
                    Err(ScriptError::Missing(first)) => {
                        let flat = root.join(&name);
                        match read_file(name, &flat).await {
                            Err(ScriptError::Missing(flat)) => Err(ScriptError::Missing(format!("{first} or {flat}"))),
                            other => other,
                        }
                    }
                    other => other,
                }
            }
            Self::S3(s3) => {
                let in_engine = format!("{}{}/{name}", s3.prefix, dialect.as_str());
                match s3.load(name.clone(), in_engine).await {
                    Err(ScriptError::Missing(first)) => {
                        let flat = format!("{}{name}", s3.prefix);
                        match s3.load(name, flat).await {
                            Err(ScriptError::Missing(flat)) => Err(ScriptError::Missing(format!("{first} or {flat}"))),
                            other => other,
                        }
                    }
                    other => other,
                }
            }
        }
    }
}

async fn read_file(name: String, path: &std::path::Path) -> Result<PlanScript, ScriptError> {
    let location = path.display().to_string();
    match tokio::fs::read(path).await {
        Ok(bytes) => plan_script(name, location, bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ScriptError::Missing(location)),
        Err(source) => Err(ScriptError::Read { location, source }),
    }
}

impl S3Scripts {
    async fn load(&self, name: String, key: String) -> Result<PlanScript, ScriptError> {
        let location = format!("s3://{}/{key}", self.bucket);
        let cached = self.cache.lock().expect("cache lock").get(&key).cloned();
        let mut request = self.client.get_object().bucket(&self.bucket).key(&key);
        if let Some((etag, _)) = &cached {
            request = request.if_none_match(etag);
        }
        let out = match request.send().await {
            Ok(out) => out,
            Err(e) => {
                if let (Some((_, script)), Some(304)) = (&cached, e.raw_response().map(|r| r.status().as_u16())) {
                    return Ok(script.clone());
                }
                if e.as_service_error().is_some_and(|se| se.is_no_such_key()) {
                    return Err(ScriptError::Missing(location));
                }
                let step = crate::infra::sdk_error(crate::error::ErrorCode::ScriptUnreadable, "S3", &e);
                return Err(ScriptError::Remote { location, transient: step.is_transient(), message: step.message });
            }
        };
        let etag = out.e_tag().map(str::to_owned);
        let bytes = out.body.collect().await.map_err(|e| ScriptError::Remote {
            location: location.clone(),
            message: e.to_string(),
            transient: true,
        })?;
        let script = plan_script(name, location, bytes.to_vec())?;
        if let Some(etag) = etag {
            self.cache.lock().expect("cache lock").insert(key, (etag, script.clone()));
        }
        Ok(script)
    }

    /// How many scripts are cached (for tests of the cache).
    pub fn cached(&self) -> usize {
        self.cache.lock().expect("cache lock").len()
    }
}
