//! Artifact bytes in the database, for `registry.artifact_backend =
//! "postgres"`: one `artifact_blobs` row per digest (when it was last
//! written) and its bytes in `artifact_chunks` rows of at most
//! [`CHUNK_BYTES`]. A download reads one chunk row per query, so it holds one
//! chunk at a time rather than the whole artifact, and `Artifacts::open`
//! checks the digest on the way exactly as it does for files.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures::stream::StreamExt;
use hotswap_actors::store::StoreError;

use super::errors::Failure;
use super::schema::{artifact_blobs, artifact_chunks};
use super::PgStore;
use crate::registry::artifact_stream::{ArtifactChunks, CHUNK_BYTES};
use crate::registry::{ArtifactBackend, ArtifactError, OpenedArtifact};

fn unavailable(e: StoreError) -> ArtifactError {
    ArtifactError::Unavailable(e.to_string())
}

impl PgStore {
    /// Chunk `seq` of `digest`; `None` when it is gone (removed meanwhile).
    async fn artifact_chunk(&self, digest: &str, seq: i32) -> Result<Option<Vec<u8>>, ArtifactError> {
        let mut pooled = self.conn().await.map_err(unavailable)?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let found = artifact_chunks::table
            .find((digest, seq))
            .select(artifact_chunks::bytes)
            .first::<Vec<u8>>(conn)
            .await
            .optional();
        found.map_err(|e| unavailable(self.db_error(conn, e)))
    }
}

#[async_trait]
impl ArtifactBackend for PgStore {
    async fn write(&self, digest: &str, bytes: Bytes) -> Result<String, ArtifactError> {
        let mut pooled = self.conn().await.map_err(unavailable)?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        // One transaction: a reader sees the old chunks or the new ones, never
        // a mix. The same digest holds the same bytes; writing them again
        // repairs chunks that were altered.
        let written = conn
            .transaction::<_, Failure, _>(async |conn| {
                diesel::insert_into(artifact_blobs::table)
                    .values(artifact_blobs::sha256.eq(digest))
                    .on_conflict(artifact_blobs::sha256)
                    .do_update()
                    // Written again now: the sweep's grace period starts over.
                    .set(artifact_blobs::created_at.eq(diesel::dsl::now))
                    .execute(conn)
                    .await?;
                diesel::delete(artifact_chunks::table.filter(artifact_chunks::sha256.eq(digest))).execute(conn).await?;
                // An empty artifact still has one (empty) chunk, so that every
                // stored digest has rows to read.
                let chunks: Vec<&[u8]> = if bytes.is_empty() { vec![&[]] } else { bytes.chunks(CHUNK_BYTES).collect() };
                for (seq, chunk) in chunks.into_iter().enumerate() {
                    let seq = i32::try_from(seq).map_err(|_| StoreError::Other("artifact too large".into()))?;
                    diesel::insert_into(artifact_chunks::table)
                        .values((
                            artifact_chunks::sha256.eq(digest),
                            artifact_chunks::seq.eq(seq),
                            artifact_chunks::bytes.eq(chunk),
                        ))
                        .execute(conn)
                        .await?;
                }
                Ok(())
            })
            .await;
        match written {
            Ok(()) => Ok(format!("pg:sha256/{digest}")),
            Err(f) => Err(unavailable(self.failure(conn, f))),
        }
    }

    async fn read(&self, digest: &str) -> Result<Bytes, ArtifactError> {
        let opened = self.open(digest).await?;
        let mut whole = Vec::with_capacity(usize::try_from(opened.len).unwrap_or_default());
        let mut chunks = opened.chunks;
        while let Some(chunk) = chunks.next().await {
            whole.extend_from_slice(&chunk?);
        }
        Ok(Bytes::from(whole))
    }

    async fn open(&self, digest: &str) -> Result<OpenedArtifact, ArtifactError> {
        let mut pooled = self.conn().await.map_err(unavailable)?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        // The stored length is what the chunks hold now (octet_length reads
        // a stored value's size without reading the value).
        let counted = artifact_chunks::table
            .filter(artifact_chunks::sha256.eq(digest))
            .select((
                diesel::dsl::count_star(),
                diesel::dsl::sql::<diesel::sql_types::BigInt>("coalesce(sum(octet_length(bytes)), 0)::bigint"),
            ))
            .first::<(i64, i64)>(conn)
            .await;
        let (count, len) = counted.map_err(|e| unavailable(self.db_error(conn, e)))?;
        drop(pooled);
        if count == 0 {
            return Err(ArtifactError::NotFound(digest.to_string()));
        }
        let count = i32::try_from(count).map_err(|_| ArtifactError::Unavailable("too many chunks".into()))?;
        let (store, wanted) = (self.clone(), digest.to_string());
        let chunks: ArtifactChunks = futures::stream::try_unfold(0, move |seq| {
            let (store, wanted) = (store.clone(), wanted.clone());
            async move {
                if seq == count {
                    return Ok(None);
                }
                match store.artifact_chunk(&wanted, seq).await? {
                    Some(bytes) => Ok(Some((Bytes::from(bytes), seq + 1))),
                    None => Err(ArtifactError::NotFound(wanted)),
                }
            }
        })
        .boxed();
        Ok(OpenedArtifact { len: u64::try_from(len).unwrap_or_default(), chunks })
    }

    async fn stored(&self) -> Result<Vec<(String, DateTime<Utc>)>, ArtifactError> {
        let mut pooled = self.conn().await.map_err(unavailable)?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let found = artifact_blobs::table
            .select((artifact_blobs::sha256, artifact_blobs::created_at))
            .load::<(String, DateTime<Utc>)>(conn)
            .await;
        found.map_err(|e| unavailable(self.db_error(conn, e)))
    }

    async fn remove(&self, digest: &str, written_before: DateTime<Utc>) -> Result<(), ArtifactError> {
        let mut pooled = self.conn().await.map_err(unavailable)?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        // Only if nobody wrote it again since the sweep looked; its chunks go
        // with it (ON DELETE CASCADE).
        let target = artifact_blobs::table.find(digest).filter(artifact_blobs::created_at.lt(written_before));
        diesel::delete(target).execute(conn).await.map(|_| ()).map_err(|e| unavailable(self.db_error(conn, e)))
    }
}
