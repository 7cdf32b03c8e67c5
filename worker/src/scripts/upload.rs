//! Uploading a scripts folder to S3 (`landlord scripts upload`). Every name and every script is checked
//! first; if any is wrong, nothing is uploaded, so a bucket never holds half a release.

use std::path::{Path, PathBuf};

use super::{Dialect, split};

/// One script ready to upload.
#[derive(Debug, Clone)]
pub struct Upload {
    pub path: PathBuf,
    /// Key under the prefix: `mysql/package-10-type-10.sql`.
    pub key: String,
    pub statements: usize,
    pub bytes: u64,
}

/// `package-{n}-type-{n}.sql` with positive numbers, or an upgrade between two plans,
/// `upgrade-package-{n}-type-{n}-to-package-{n}-type-{n}.sql`.
pub fn valid_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".sql") else { return false };
    match stem.strip_prefix("upgrade-").and_then(|r| r.split_once("-to-")) {
        Some((from, to)) => valid_plan(from) && valid_plan(to) && from != to,
        None => valid_plan(stem),
    }
}

/// `package-{n}-type-{n}`.
fn valid_plan(stem: &str) -> bool {
    let Some(rest) = stem.strip_prefix("package-") else {
        return false;
    };
    let Some((package, kind)) = rest.split_once("-type-") else {
        return false;
    };
    [package, kind].iter().all(|n| landlord_protocol::PackageId::parse(n).is_ok())
}

/// Checks a scripts folder (`mysql/` and `postgres/` of `package-N-type-N.sql`): every file correctly
/// named, every script splitting into at least one statement. Returns the uploads or every problem.
pub fn check_folder(dir: &Path) -> Result<Vec<Upload>, Vec<String>> {
    let mut problems = Vec::new();
    let mut uploads = Vec::new();
    let mut seen_folder = false;
    for dialect in [Dialect::MySql, Dialect::Postgres] {
        let folder = dir.join(dialect.as_str());
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        seen_folder = true;
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            if !valid_name(&name) {
                problems.push(format!("{}: name must be package-<n>-type-<n>.sql", path.display()));
                continue;
            }
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            match split(&text, dialect) {
                Ok(s) if s.is_empty() => problems.push(format!("{}: no statements", path.display())),
                Ok(s) => uploads.push(Upload {
                    key: format!("{}/{name}", dialect.as_str()),
                    statements: s.len(),
                    bytes: text.len() as u64,
                    path,
                }),
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            }
        }
    }
    if !seen_folder {
        problems.push(format!("{}: has neither mysql/ nor postgres/", dir.display()));
    }
    if problems.is_empty() { Ok(uploads) } else { Err(problems) }
}

/// Uploads checked scripts under `s3://bucket/prefix`, as `application/sql`, calling `done` after each.
pub async fn upload(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    uploads: &[Upload],
    mut done: impl FnMut(&Upload),
) -> Result<(), String> {
    let prefix = crate::infra::folder_prefix(prefix);
    for u in uploads {
        let body = aws_sdk_s3::primitives::ByteStream::from_path(&u.path)
            .await
            .map_err(|e| format!("{}: {e}", u.path.display()))?;
        client
            .put_object()
            .bucket(bucket)
            .key(format!("{prefix}{}", u.key))
            .content_type("application/sql")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "uploading {} to s3://{bucket}/{prefix}{}: {}",
                    u.path.display(),
                    u.key,
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            })?;
        done(u);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn plan_and_upgrade_script_names() {
        for good in ["package-10-type-10.sql", "upgrade-package-10-type-10-to-package-20-type-10.sql"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "package-10-type-10.txt",
            "package-0-type-10.sql",
            "plan-one.sql",
            "upgrade-package-10-type-10.sql",
            "upgrade-package-10-type-10-to-package-10-type-10.sql",
            "upgrade-package-10-type-10-to-../x.sql",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
