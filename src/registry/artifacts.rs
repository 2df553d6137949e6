//! Artifact bytes by SHA-256. A back-end only keeps and returns bytes;
//! [`Artifacts`] checks the digest on the way in and on every read, so a
//! corrupted or swapped file is never served or deployed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::crypto::{is_sha256_hex, sha256_hex};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactError {
    #[error("no artifact with SHA-256 {0} is stored")]
    NotFound(String),
    #[error("the stored artifact's SHA-256 is {actual}, not {expected}: it was altered")]
    Corrupt { expected: String, actual: String },
    #[error("the artifact store is unavailable: {0}")]
    Unavailable(String),
}

/// Where the bytes live. `digest` is always 64 lower-case hex digits.
#[async_trait]
pub trait ArtifactBackend: Send + Sync {
    /// Keeps `bytes` under `digest`; writing the same digest again is
    /// harmless. Answers the storage URI recorded with the version.
    async fn write(&self, digest: &str, bytes: Bytes) -> Result<String, ArtifactError>;
    async fn read(&self, digest: &str) -> Result<Bytes, ArtifactError>;
}

#[derive(Clone)]
pub struct Artifacts {
    backend: Arc<dyn ArtifactBackend>,
}

impl Artifacts {
    pub fn new(backend: Arc<dyn ArtifactBackend>) -> Artifacts {
        Artifacts { backend }
    }

    /// Stores `bytes`, whose digest the caller computed as `digest`.
    pub async fn put(&self, digest: &str, bytes: Bytes) -> Result<String, ArtifactError> {
        debug_assert_eq!(sha256_hex(&bytes), digest);
        self.backend.write(digest, bytes).await
    }

    /// The bytes stored under `digest`, checked against it.
    pub async fn get(&self, digest: &str) -> Result<Bytes, ArtifactError> {
        if !is_sha256_hex(digest) {
            return Err(ArtifactError::NotFound(digest.to_string()));
        }
        let bytes = self.backend.read(digest).await?;
        let actual = sha256_hex(&bytes);
        if actual != digest {
            tracing::error!(expected = %digest, %actual, "stored artifact does not match its digest");
            return Err(ArtifactError::Corrupt { expected: digest.to_string(), actual });
        }
        Ok(bytes)
    }
}

/// A content-addressed directory: `<root>/sha256/<first two digits>/<digest>`.
/// Files are written under a temporary name and renamed, so a reader never
/// sees half a file.
pub struct DirectoryArtifacts {
    root: PathBuf,
}

impl DirectoryArtifacts {
    pub fn new(root: impl Into<PathBuf>) -> DirectoryArtifacts {
        DirectoryArtifacts { root: root.into() }
    }

    pub fn path_of(&self, digest: &str) -> PathBuf {
        self.root.join("sha256").join(&digest[..2]).join(digest)
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().expect("artifact paths have a parent");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[async_trait]
impl ArtifactBackend for DirectoryArtifacts {
    async fn write(&self, digest: &str, bytes: Bytes) -> Result<String, ArtifactError> {
        let path = self.path_of(digest);
        let uri = format!("fs:sha256/{}/{digest}", &digest[..2]);
        // The file system blocks: off the actor threads.
        actix_web::web::block(move || {
            // The same digest holds the same bytes, unless the file was altered:
            // then it is replaced by the good copy.
            if std::fs::read(&path).is_ok_and(|old| sha256_hex(&old) == sha256_hex(&bytes)) {
                return Ok(());
            }
            write_atomically(&path, &bytes)
        })
        .await
        .map_err(|e| ArtifactError::Unavailable(e.to_string()))?
        .map_err(|e| ArtifactError::Unavailable(format!("cannot write the artifact: {e}")))?;
        Ok(uri)
    }

    async fn read(&self, digest: &str) -> Result<Bytes, ArtifactError> {
        let path = self.path_of(digest);
        let wanted = digest.to_string();
        actix_web::web::block(move || std::fs::read(path))
            .await
            .map_err(|e| ArtifactError::Unavailable(e.to_string()))?
            .map(Bytes::from)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => ArtifactError::NotFound(wanted),
                _ => ArtifactError::Unavailable(format!("cannot read the artifact: {e}")),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn directory_round_trip_and_tamper_detection() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(DirectoryArtifacts::new(dir.path()));
        let artifacts = Artifacts::new(backend.clone());
        let bytes = Bytes::from_static(b"kernel module bytes");
        let digest = sha256_hex(&bytes);
        let uri = artifacts.put(&digest, bytes.clone()).await.unwrap();
        assert!(uri.ends_with(&digest));
        assert_eq!(artifacts.get(&digest).await.unwrap(), bytes);
        std::fs::write(backend.path_of(&digest), b"tampered").unwrap();
        assert!(matches!(artifacts.get(&digest).await, Err(ArtifactError::Corrupt { .. })));
        // Uploading the good bytes again repairs the file.
        artifacts.put(&digest, bytes.clone()).await.unwrap();
        assert_eq!(artifacts.get(&digest).await.unwrap(), bytes);
        let missing = sha256_hex(b"never stored");
        assert!(matches!(artifacts.get(&missing).await, Err(ArtifactError::NotFound(_))));
        assert!(matches!(artifacts.get("../../etc/passwd").await, Err(ArtifactError::NotFound(_))));
    }
}
