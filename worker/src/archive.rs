//! Where offboarded tenants' final dumps go (`LANDLORD_ARCHIVE`): a folder, or `s3://bucket/prefix/`.
//! A dump is streamed as the tool writes it: to a file beside its final name, renamed when complete, or
//! to S3 in parts of 8 MiB (one plain upload when it is smaller), so a dump never has to fit in memory
//! and a half-written one is never taken for a whole one. Each archive is named by its tenant
//! (`{prefix}{tenant_id}/{database}.sql`), so a repeated offboarding step replaces its own dump.

use std::{path::PathBuf, time::Duration};

use aws_sdk_s3::{
    primitives::ByteStream,
    types::{CompletedMultipartUpload, CompletedPart},
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::error::{ErrorCode, StepError};

/// Parts of a multipart upload: S3 needs at least 5 MiB for every part but the last.
const PART: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub enum ArchiveTarget {
    Folder(PathBuf),
    S3 { client: aws_sdk_s3::Client, bucket: String, prefix: String },
}

/// A stored dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    /// `s3://bucket/key` or the file's path.
    pub location: String,
    pub bytes: u64,
    pub sha256: String,
}

fn store_error(location: &str, message: impl std::fmt::Display) -> StepError {
    StepError::transient(ErrorCode::ArchiveStore, format!("cannot write the archive {location}: {message}"))
}

impl ArchiveTarget {
    /// A folder path, or `s3://bucket/prefix/` written with `s3` (required then).
    pub fn parse(location: &str, s3: Option<aws_sdk_s3::Client>) -> Result<Self, String> {
        match crate::infra::parse_s3_url(location) {
            Some((bucket, prefix)) => {
                let client = s3.ok_or("an S3 archive needs the AWS configuration")?;
                Ok(Self::S3 { client, bucket, prefix: crate::infra::folder_prefix(&prefix) })
            }
            None if location.starts_with("s3:") => {
                Err(format!("LANDLORD_ARCHIVE {location:?} is not s3://bucket/prefix/"))
            }
            None if location.trim().is_empty() => Err("LANDLORD_ARCHIVE is empty".into()),
            None => Ok(Self::Folder(PathBuf::from(location))),
        }
    }

    /// Where the archive called `name` (a relative path made of validated ids) is kept.
    pub fn location(&self, name: &str) -> String {
        match self {
            Self::Folder(root) => root.join(name).display().to_string(),
            Self::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}{name}"),
        }
    }

    /// Stores everything `reader` yields as `name`, marked to be kept until `retain_until`.
    pub async fn store(
        &self,
        name: &str,
        reader: &mut (dyn AsyncRead + Send + Unpin),
        retain_until: chrono::DateTime<chrono::Utc>,
    ) -> Result<Archived, StepError> {
        match self {
            Self::Folder(root) => store_in_folder(&root.join(name), reader).await,
            Self::S3 { client, bucket, prefix } => {
                let key = format!("{prefix}{name}");
                let upload = S3Upload { client, bucket, key: &key, retain_until: retain_until.to_rfc3339() };
                upload.store(reader).await
            }
        }
    }

    /// Deletes an archive past its retention; one already gone counts as deleted.
    pub async fn delete(&self, location: &str) -> Result<(), StepError> {
        match self {
            Self::Folder(_) => match tokio::fs::remove_file(location).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(store_error(location, e)),
            },
            Self::S3 { client, .. } => {
                let Some((bucket, key)) = crate::infra::parse_s3_url(location) else {
                    return Err(store_error(location, "not an S3 location"));
                };
                client
                    .delete_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| crate::infra::sdk_error(ErrorCode::ArchiveStore, "S3", &e))?;
                Ok(())
            }
        }
    }
}

/// Reads up to one part: fewer bytes only at the end of the stream.
async fn read_part(reader: &mut (dyn AsyncRead + Send + Unpin), buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    while buf.len() < PART {
        let mut limited = (&mut *reader).take((PART - buf.len()) as u64);
        if limited.read_to_end(buf).await? == 0 {
            break;
        }
    }
    Ok(())
}

async fn store_in_folder(
    path: &std::path::Path,
    reader: &mut (dyn AsyncRead + Send + Unpin),
) -> Result<Archived, StepError> {
    let location = path.display().to_string();
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(|e| store_error(&location, e))?;
    }
    let partial = path.with_extension("sql.partial");
    let mut file = tokio::fs::File::create(&partial).await.map_err(|e| store_error(&location, e))?;
    let (mut hash, mut bytes, mut buf) = (Sha256::new(), 0u64, Vec::with_capacity(64 * 1024));
    loop {
        buf.clear();
        let n = (&mut *reader).take(64 * 1024).read_to_end(&mut buf).await.map_err(|e| store_error(&location, e))?;
        if n == 0 {
            break;
        }
        hash.update(&buf);
        bytes += n as u64;
        file.write_all(&buf).await.map_err(|e| store_error(&location, e))?;
    }
    file.sync_all().await.map_err(|e| store_error(&location, e))?;
    drop(file);
    tokio::fs::rename(&partial, path).await.map_err(|e| store_error(&location, e))?;
    Ok(Archived { location, bytes, sha256: hex::encode(hash.finalize()) })
}

struct S3Upload<'a> {
    client: &'a aws_sdk_s3::Client,
    bucket: &'a str,
    key: &'a str,
    retain_until: String,
}

impl S3Upload<'_> {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    fn sdk<E, R>(&self, what: &str, e: &aws_sdk_s3::error::SdkError<E, R>) -> StepError
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        crate::infra::sdk_error(ErrorCode::ArchiveStore, &format!("S3 ({what} {})", self.location()), e)
    }

    async fn store(&self, reader: &mut (dyn AsyncRead + Send + Unpin)) -> Result<Archived, StepError> {
        let location = self.location();
        let (mut hash, mut bytes, mut buf) = (Sha256::new(), 0u64, Vec::with_capacity(PART));
        read_part(reader, &mut buf).await.map_err(|e| store_error(&location, e))?;
        hash.update(&buf);
        bytes += buf.len() as u64;
        if buf.len() < PART {
            // The whole dump fits in one part: one plain upload.
            self.client
                .put_object()
                .bucket(self.bucket)
                .key(self.key)
                .content_type("application/sql")
                .metadata("landlord-retain-until", &self.retain_until)
                .body(ByteStream::from(std::mem::take(&mut buf)))
                .send()
                .await
                .map_err(|e| self.sdk("writing", &e))?;
            return Ok(Archived { location, bytes, sha256: hex::encode(hash.finalize()) });
        }
        let created = self
            .client
            .create_multipart_upload()
            .bucket(self.bucket)
            .key(self.key)
            .content_type("application/sql")
            .metadata("landlord-retain-until", &self.retain_until)
            .send()
            .await
            .map_err(|e| self.sdk("starting an upload to", &e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        let result = self.parts(&upload_id, reader, buf, &mut hash, &mut bytes).await;
        match result {
            Ok(parts) => {
                let done = CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
                self.client
                    .complete_multipart_upload()
                    .bucket(self.bucket)
                    .key(self.key)
                    .upload_id(&upload_id)
                    .multipart_upload(done)
                    .send()
                    .await
                    .map_err(|e| self.sdk("completing the upload to", &e))?;
                Ok(Archived { location, bytes, sha256: hex::encode(hash.finalize()) })
            }
            Err(e) => {
                // The parts uploaded so far would be kept (and billed) until aborted.
                let abort =
                    self.client.abort_multipart_upload().bucket(self.bucket).key(self.key).upload_id(&upload_id);
                if let Err(abort_err) = tokio::time::timeout(Duration::from_secs(30), abort.send()).await {
                    tracing::warn!(error = %abort_err, key = self.key, "could not abort an unfinished archive upload");
                }
                Err(e)
            }
        }
    }

    async fn parts(
        &self,
        upload_id: &str,
        reader: &mut (dyn AsyncRead + Send + Unpin),
        mut buf: Vec<u8>,
        hash: &mut Sha256,
        bytes: &mut u64,
    ) -> Result<Vec<CompletedPart>, StepError> {
        let location = self.location();
        let mut parts = Vec::new();
        let mut number = 1;
        loop {
            let out = self
                .client
                .upload_part()
                .bucket(self.bucket)
                .key(self.key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(std::mem::replace(&mut buf, Vec::with_capacity(PART))))
                .send()
                .await
                .map_err(|e| self.sdk("uploading a part to", &e))?;
            parts.push(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag().map(str::to_owned)).build());
            read_part(reader, &mut buf).await.map_err(|e| store_error(&location, e))?;
            if buf.is_empty() {
                return Ok(parts);
            }
            hash.update(&buf);
            *bytes += buf.len() as u64;
            number += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_is_a_folder_or_an_s3_prefix() {
        assert!(matches!(ArchiveTarget::parse("./archive", None), Ok(ArchiveTarget::Folder(_))));
        assert!(ArchiveTarget::parse("s3://bucket/dumps", None).unwrap_err().contains("AWS"));
        assert!(ArchiveTarget::parse("s3:/bucket", None).unwrap_err().contains("s3://bucket/prefix/"));
        assert!(ArchiveTarget::parse(" ", None).is_err());
    }

    #[tokio::test]
    async fn a_folder_archive_is_whole_or_absent_and_its_checksum_is_the_contents() {
        let dir = tempfile::tempdir().unwrap();
        let target = ArchiveTarget::Folder(dir.path().to_path_buf());
        let body = b"CREATE TABLE t (id INT);\n".repeat(10_000);
        let archived = target.store("tenant/db.sql", &mut body.as_slice(), chrono::Utc::now()).await.unwrap();
        assert_eq!(archived.bytes, body.len() as u64);
        assert_eq!(archived.sha256, hex::encode(Sha256::digest(&body)));
        assert_eq!(std::fs::read(dir.path().join("tenant/db.sql")).unwrap(), body);
        assert!(!dir.path().join("tenant/db.sql.partial").exists());
        target.delete(&archived.location).await.unwrap();
        target.delete(&archived.location).await.unwrap();
        assert!(!dir.path().join("tenant/db.sql").exists());
    }
}
