//! Reading a stored artifact in chunks instead of whole, with its digest
//! checked on the way. A download of 64 MiB then holds a few chunks in
//! memory, not the artifact, and the hashing runs on the blocking pool.
//!
//! The promise kept: bytes that no longer match their digest never reach a
//! client whole. A file whose length differs from the recorded one is refused
//! before the first byte, and so is an altered one of up to
//! `artifacts::CHECKED_WHOLE_BYTES` (1 MiB), which is read and checked whole
//! first. A larger one streams: the last chunk is held back until the digest
//! over everything before it matches, and the stream ends in an error when it
//! does not, so the client sees a body cut short of its `Content-Length`
//! rather than a complete, altered artifact.

use std::io::Read;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use sha2::{Digest, Sha256};

use super::artifacts::ArtifactError;

/// The most bytes one read takes from a back-end that streams.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// An artifact's bytes as they are read.
pub type ArtifactChunks = BoxStream<'static, Result<Bytes, ArtifactError>>;

/// A stored artifact opened for reading: its stored length and its bytes.
pub struct OpenedArtifact {
    pub len: u64,
    pub chunks: ArtifactChunks,
}

impl OpenedArtifact {
    /// Bytes already in memory (a back-end that cannot stream), as one chunk.
    pub fn whole(bytes: Bytes) -> OpenedArtifact {
        OpenedArtifact { len: bytes.len() as u64, chunks: futures::stream::once(async move { Ok(bytes) }).boxed() }
    }
}

/// The chunks of an open file, each read on the blocking pool.
pub fn file_chunks(file: std::fs::File) -> ArtifactChunks {
    futures::stream::try_unfold(Some(file), |file| async move {
        let Some(file) = file else { return Ok(None) };
        let (file, chunk) = actix_web::web::block(move || -> std::io::Result<_> {
            let mut chunk = Vec::with_capacity(CHUNK_BYTES);
            (&file).take(CHUNK_BYTES as u64).read_to_end(&mut chunk)?;
            Ok((file, chunk))
        })
        .await
        .map_err(|e| ArtifactError::Unavailable(e.to_string()))?
        .map_err(|e| ArtifactError::Unavailable(format!("cannot read the artifact: {e}")))?;
        if chunk.is_empty() {
            return Ok(None);
        }
        Ok(Some((Bytes::from(chunk), Some(file))))
    })
    .boxed()
}

/// Adds `chunk` to `hasher` on the blocking pool.
async fn hash_off_worker(mut hasher: Sha256, chunk: Bytes) -> Sha256 {
    let mut on_worker = hasher.clone();
    let copy = chunk.clone();
    match tokio::task::spawn_blocking(move || {
        on_worker.update(&copy);
        on_worker
    })
    .await
    {
        Ok(updated) => updated,
        // The pool is shutting down: hash here rather than fail.
        Err(_) => {
            hasher.update(&chunk);
            hasher
        }
    }
}

/// Where a checked stream stands.
struct Checking {
    inner: ArtifactChunks,
    hasher: Sha256,
    /// The last chunk read, sent only once the next one (or a matching end) arrives.
    held: Option<Bytes>,
    read: u64,
    expected_digest: String,
    expected_len: u64,
    finished: bool,
}

/// `opened`'s chunks, checked against `expected_digest` (lower-case hex) and
/// `expected_len` as described in the module's comment.
pub fn checked(opened: OpenedArtifact, expected_digest: &str, expected_len: u64) -> ArtifactChunks {
    let state = Checking {
        inner: opened.chunks,
        hasher: Sha256::new(),
        held: None,
        read: 0,
        expected_digest: expected_digest.to_string(),
        expected_len,
        finished: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        if state.finished {
            return None;
        }
        loop {
            match state.inner.next().await {
                Some(Ok(chunk)) => {
                    state.read += chunk.len() as u64;
                    state.hasher = hash_off_worker(state.hasher, chunk.clone()).await;
                    if let Some(ready) = state.held.replace(chunk) {
                        return Some((Ok(ready), state));
                    }
                }
                Some(Err(e)) => {
                    state.finished = true;
                    return Some((Err(e), state));
                }
                None => {
                    state.finished = true;
                    let actual = crate::crypto::hex(&state.hasher.clone().finalize());
                    if actual == state.expected_digest && state.read == state.expected_len {
                        return state.held.take().map(|last| (Ok(last), state));
                    }
                    tracing::error!(expected = %state.expected_digest, %actual, "stored artifact does not match its digest; its download was cut short");
                    let expected = state.expected_digest.clone();
                    return Some((Err(ArtifactError::Corrupt { expected, actual }), state));
                }
            }
        }
    })
    .boxed()
}

/// The digest of everything `chunks` yields, hashed on the blocking pool.
pub async fn digest_of(mut chunks: ArtifactChunks) -> Result<[u8; 32], ArtifactError> {
    let mut hasher = Sha256::new();
    while let Some(chunk) = chunks.next().await {
        hasher = hash_off_worker(hasher, chunk?).await;
    }
    Ok(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::crypto::sha256_hex;
    use crate::registry::{Artifacts, DirectoryArtifacts};

    /// What a client of the stream receives: the bytes before the first
    /// error, and whether the stream ended in one.
    async fn drain(mut chunks: ArtifactChunks) -> (Vec<u8>, bool) {
        let mut got = Vec::new();
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(bytes) => got.extend_from_slice(&bytes),
                Err(_) => return (got, true),
            }
        }
        (got, false)
    }

    /// Larger than `CHECKED_WHOLE_BYTES`: streamed, not read whole first.
    fn five_chunks_and_a_bit() -> Vec<u8> {
        let bytes: Vec<u8> = (0..CHUNK_BYTES * 5 + 100).map(|i| (i % 251) as u8).collect();
        assert!(bytes.len() as u64 > crate::registry::artifacts::CHECKED_WHOLE_BYTES);
        bytes
    }

    #[actix_web::test]
    async fn intact_bytes_stream_whole_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = Artifacts::new(Arc::new(DirectoryArtifacts::new(dir.path())));
        let bytes = five_chunks_and_a_bit();
        let digest = sha256_hex(&bytes);
        artifacts.put(&digest, Bytes::from(bytes.clone())).await.unwrap();
        let opened = artifacts.open(&digest, bytes.len() as u64).await.unwrap();
        assert_eq!(opened.len, bytes.len() as u64);
        let (got, failed) = drain(opened.chunks).await;
        assert!(!failed);
        assert_eq!(got, bytes);
        assert_eq!(hex_of(artifacts.verify(&digest).await.unwrap()), digest);
    }

    fn hex_of(digest: [u8; 32]) -> String {
        crate::crypto::hex(&digest)
    }

    #[actix_web::test]
    async fn bytes_altered_in_place_never_reach_the_client_whole() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(DirectoryArtifacts::new(dir.path()));
        let artifacts = Artifacts::new(backend.clone());
        let bytes = five_chunks_and_a_bit();
        let digest = sha256_hex(&bytes);
        artifacts.put(&digest, Bytes::from(bytes.clone())).await.unwrap();
        // The same length, one byte changed: first in the first chunk, then in the last.
        for at in [10, bytes.len() - 1] {
            let mut altered = bytes.clone();
            altered[at] ^= 0xff;
            std::fs::write(backend.path_of(&digest), &altered).unwrap();
            let opened = artifacts.open(&digest, bytes.len() as u64).await.unwrap();
            let (got, failed) = drain(opened.chunks).await;
            assert!(failed, "the stream ends in an error (byte {at} altered)");
            assert!(got.len() < bytes.len(), "the last chunk is withheld (byte {at} altered)");
            assert!(matches!(artifacts.verify(&digest).await, Err(ArtifactError::Corrupt { .. })));
        }
        // Another length is refused before a byte is sent.
        std::fs::write(backend.path_of(&digest), b"altered on disk").unwrap();
        assert!(matches!(artifacts.open(&digest, bytes.len() as u64).await, Err(ArtifactError::Corrupt { .. })));
    }

    #[actix_web::test]
    async fn small_artifacts_altered_in_place_are_refused_before_a_byte_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(DirectoryArtifacts::new(dir.path()));
        let artifacts = Artifacts::new(backend.clone());
        let bytes: Vec<u8> = (0..CHUNK_BYTES * 2 + 7).map(|i| (i % 253) as u8).collect();
        let digest = sha256_hex(&bytes);
        artifacts.put(&digest, Bytes::from(bytes.clone())).await.unwrap();
        let (got, failed) = drain(artifacts.open(&digest, bytes.len() as u64).await.unwrap().chunks).await;
        assert_eq!((got, failed), (bytes.clone(), false));
        let mut altered = bytes.clone();
        altered[CHUNK_BYTES + 1] ^= 0xff;
        std::fs::write(backend.path_of(&digest), &altered).unwrap();
        assert!(matches!(artifacts.open(&digest, bytes.len() as u64).await, Err(ArtifactError::Corrupt { .. })));
    }
}
