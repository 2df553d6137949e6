//! Artifact bytes by SHA-256. A back-end only keeps and returns bytes;
//! [`Artifacts`] checks the digest on the way in and on every read, so a
//! corrupted or swapped file is never served or deployed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::artifact_stream::{checked, digest_of, file_chunks, ArtifactChunks, OpenedArtifact};
use crate::crypto::{is_sha256_hex, sha256_hex};

/// Artifacts up to this size are read whole and checked before a download
/// sends its first byte (and before HEAD answers); larger ones stream with
/// the check on the way (`artifact_stream`), so that a download of 64 MiB
/// never holds the artifact in memory.
pub const CHECKED_WHOLE_BYTES: u64 = 1024 * 1024;

/// Every chunk of an artifact of `len` bytes, in one buffer.
async fn read_all(mut chunks: ArtifactChunks, len: u64) -> Result<Bytes, ArtifactError> {
    use futures::StreamExt;
    let mut whole = bytes::BytesMut::with_capacity(usize::try_from(len).unwrap_or(0));
    while let Some(chunk) = chunks.next().await {
        whole.extend_from_slice(&chunk?);
    }
    Ok(whole.freeze())
}

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
    /// Opens `digest` for reading in chunks. The default reads it whole, for
    /// a back-end that cannot stream (a database row).
    async fn open(&self, digest: &str) -> Result<OpenedArtifact, ArtifactError> {
        Ok(OpenedArtifact::whole(self.read(digest).await?))
    }
    /// Every stored digest with when it was last written.
    async fn stored(&self) -> Result<Vec<(String, DateTime<Utc>)>, ArtifactError>;
    /// Removes `digest` unless it was written again at or after `written_before`.
    async fn remove(&self, digest: &str, written_before: DateTime<Utc>) -> Result<(), ArtifactError>;
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

    /// Removes the stored artifacts that no version of any tenant names and
    /// that were last written before `grace` ago (an upload writes the bytes
    /// before it records the version); answers how many went.
    pub async fn collect_garbage(
        &self,
        store: &dyn hotswap_actors::store::Store,
        grace: std::time::Duration,
    ) -> Result<usize, ArtifactError> {
        let cutoff = Utc::now() - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        let mut removed = 0;
        for (digest, written) in self.backend.stored().await? {
            if written >= cutoff {
                continue;
            }
            match store.artifact_in_use(&digest).await {
                Ok(false) => {
                    self.backend.remove(&digest, cutoff).await?;
                    removed += 1;
                }
                Ok(true) => {}
                Err(e) => return Err(ArtifactError::Unavailable(e.to_string())),
            }
        }
        if removed > 0 {
            tracing::info!(removed, "unreferenced artifacts removed");
        }
        Ok(removed)
    }

    /// The bytes stored under `digest` as a stream, for a download: a stored
    /// length other than `expected_len` is refused before the first byte, and
    /// the stream ends in an error rather than complete altered bytes (see
    /// `artifact_stream`).
    pub async fn open(&self, digest: &str, expected_len: u64) -> Result<OpenedArtifact, ArtifactError> {
        if !is_sha256_hex(digest) {
            return Err(ArtifactError::NotFound(digest.to_string()));
        }
        let opened = self.backend.open(digest).await?;
        if opened.len != expected_len {
            // Altered: hash it all (only on this path) to say what is there now.
            let actual = crate::crypto::hex(&digest_of(opened.chunks).await?);
            tracing::error!(expected = %digest, %actual, len = opened.len, expected_len, "stored artifact does not match its digest");
            return Err(ArtifactError::Corrupt { expected: digest.to_string(), actual });
        }
        let len = opened.len;
        if len <= CHECKED_WHOLE_BYTES {
            // Small enough to hold: read and checked before the first byte
            // goes out, so that an altered one is answered with a 500 rather
            // than a connection closed without an answer.
            let bytes = read_all(opened.chunks, len).await?;
            let actual = super::statement::sha256_off_worker(bytes.clone()).await;
            let actual = crate::crypto::hex(&actual);
            if actual != digest {
                tracing::error!(expected = %digest, %actual, "stored artifact does not match its digest");
                return Err(ArtifactError::Corrupt { expected: digest.to_string(), actual });
            }
            return Ok(OpenedArtifact::whole(bytes));
        }
        Ok(OpenedArtifact { len, chunks: checked(opened, digest, len) })
    }

    /// Reads the bytes stored under `digest` in chunks and answers their
    /// SHA-256 once it matches `digest`, never holding the artifact whole.
    pub async fn verify(&self, digest: &str) -> Result<[u8; 32], ArtifactError> {
        if !is_sha256_hex(digest) {
            return Err(ArtifactError::NotFound(digest.to_string()));
        }
        let digest_bytes = digest_of(self.backend.open(digest).await?.chunks).await?;
        let actual = crate::crypto::hex(&digest_bytes);
        if actual != digest {
            tracing::error!(expected = %digest, %actual, "stored artifact does not match its digest");
            return Err(ArtifactError::Corrupt { expected: digest.to_string(), actual });
        }
        Ok(digest_bytes)
    }

    /// The bytes stored under `digest`, checked against it.
    pub async fn get(&self, digest: &str) -> Result<Bytes, ArtifactError> {
        if !is_sha256_hex(digest) {
            return Err(ArtifactError::NotFound(digest.to_string()));
        }
        let bytes = self.backend.read(digest).await?;
        let actual = crate::crypto::hex(&super::statement::sha256_off_worker(bytes.clone()).await);
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
    let Some(dir) = path.parent() else {
        return Err(std::io::Error::other(format!("{} has no parent directory", path.display())));
    };
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
                // Written again now: the sweep's grace period starts over.
                return std::fs::File::options().append(true).open(&path)?.set_modified(std::time::SystemTime::now());
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

    async fn open(&self, digest: &str) -> Result<OpenedArtifact, ArtifactError> {
        let path = self.path_of(digest);
        let wanted = digest.to_string();
        let (file, len) = actix_web::web::block(move || -> std::io::Result<_> {
            let file = std::fs::File::open(path)?;
            let len = file.metadata()?.len();
            Ok((file, len))
        })
        .await
        .map_err(|e| ArtifactError::Unavailable(e.to_string()))?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ArtifactError::NotFound(wanted),
            _ => ArtifactError::Unavailable(format!("cannot open the artifact: {e}")),
        })?;
        let chunks: ArtifactChunks = file_chunks(file);
        Ok(OpenedArtifact { len, chunks })
    }

    async fn stored(&self) -> Result<Vec<(String, DateTime<Utc>)>, ArtifactError> {
        let root = self.root.join("sha256");
        actix_web::web::block(move || {
            let mut out = Vec::new();
            let Ok(shards) = std::fs::read_dir(&root) else { return Ok(out) };
            for shard in shards.flatten() {
                for file in std::fs::read_dir(shard.path())?.flatten() {
                    let name = file.file_name().to_string_lossy().to_string();
                    // Temporary files of a write in progress start with a dot.
                    if is_sha256_hex(&name) {
                        out.push((name, DateTime::<Utc>::from(file.metadata()?.modified()?)));
                    }
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| ArtifactError::Unavailable(e.to_string()))?
        .map_err(|e: std::io::Error| ArtifactError::Unavailable(format!("cannot list artifacts: {e}")))
    }

    async fn remove(&self, digest: &str, written_before: DateTime<Utc>) -> Result<(), ArtifactError> {
        let path = self.path_of(digest);
        actix_web::web::block(move || {
            let fresh = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| DateTime::<Utc>::from(t) >= written_before);
            if fresh {
                return Ok(());
            }
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        })
        .await
        .map_err(|e| ArtifactError::Unavailable(e.to_string()))?
        .map_err(|e| ArtifactError::Unavailable(format!("cannot remove the artifact: {e}")))
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
