//! Automerge documents in SQLite: each document is a run of chunks (a snapshot, then the
//! changes saved after it), cached in memory and reloaded when another process wrote to it.

use crate::error::{DbContext, Error, Result};
use automerge::{ActorId, Automerge, ChangeHash};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::Path;

/// After this many incremental chunks a document is compacted into one snapshot.
const COMPACT_AFTER_CHUNKS: i64 = 64;

#[derive(Debug)]
pub(crate) struct CachedDoc {
    pub(crate) doc: Automerge,
    /// The highest chunk `seq` this copy includes; a different value in the file means reload.
    generation: i64,
    chunks: i64,
}

/// The in-memory copies of the documents this process has touched.
#[derive(Debug, Default)]
pub(crate) struct DocCache(HashMap<String, CachedDoc>);

impl DocCache {
    /// The document as the file holds it now, loading or reloading as needed.
    pub(crate) fn fresh(
        &mut self,
        conn: &Connection,
        path: &Path,
        doc_id: &str,
        actor: &ActorId,
    ) -> Result<&mut CachedDoc> {
        let (generation, chunks): (i64, i64) = conn
            .query_row(
                "SELECT coalesce(max(seq), 0), count(*) FROM doc_chunks WHERE doc_id = ?1",
                [doc_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .db(path)?;
        let stale = self
            .0
            .get(doc_id)
            .is_none_or(|cached| cached.generation != generation);
        if stale {
            let mut stmt = conn
                .prepare_cached("SELECT bytes FROM doc_chunks WHERE doc_id = ?1 ORDER BY seq")
                .db(path)?;
            let mut bytes = Vec::new();
            for chunk in stmt
                .query_map([doc_id], |r| r.get::<_, Vec<u8>>(0))
                .db(path)?
            {
                bytes.extend(chunk.db(path)?);
            }
            let mut doc = if bytes.is_empty() {
                Automerge::new()
            } else {
                Automerge::load(&bytes).map_err(|source| Error::Document {
                    doc_id: doc_id.to_string(),
                    source: Box::new(source),
                })?
            };
            doc.set_actor(actor.clone());
            self.0.insert(
                doc_id.to_string(),
                CachedDoc {
                    doc,
                    generation,
                    chunks,
                },
            );
        }
        Ok(self
            .0
            .get_mut(doc_id)
            .expect("the document was cached or loaded above"))
    }

    /// The chunk generation of the cached copy.
    pub(crate) fn generation(&self, doc_id: &str) -> Option<i64> {
        self.0.get(doc_id).map(|cached| cached.generation)
    }

    pub(crate) fn evict(&mut self, doc_id: &str) {
        self.0.remove(doc_id);
    }

    /// Appends what changed since `before` to the file, compacting when the run gets long.
    pub(crate) fn persist(
        &mut self,
        conn: &Connection,
        path: &Path,
        doc_id: &str,
        before: &[ChangeHash],
    ) -> Result<()> {
        let Some(cached) = self.0.get_mut(doc_id) else {
            return Ok(());
        };
        if cached.doc.get_heads() == before {
            return Ok(());
        }
        let next = cached.generation + 1;
        if cached.chunks >= COMPACT_AFTER_CHUNKS {
            conn.execute("DELETE FROM doc_chunks WHERE doc_id = ?1", [doc_id])
                .db(path)?;
            conn.execute(
                "INSERT INTO doc_chunks (doc_id, seq, bytes) VALUES (?1, ?2, ?3)",
                params![doc_id, next, cached.doc.save()],
            )
            .db(path)?;
            cached.chunks = 1;
        } else {
            conn.execute(
                "INSERT INTO doc_chunks (doc_id, seq, bytes) VALUES (?1, ?2, ?3)",
                params![doc_id, next, cached.doc.save_after(before)],
            )
            .db(path)?;
            cached.chunks += 1;
        }
        cached.generation = next;
        Ok(())
    }
}

/// Every document id in the file.
pub(crate) fn doc_ids(conn: &Connection, path: &Path) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare("SELECT DISTINCT doc_id FROM doc_chunks ORDER BY doc_id")
        .db(path)?;
    let ids = stmt
        .query_map([], |r| r.get(0))
        .db(path)?
        .collect::<Result<Vec<String>, _>>()
        .db(path)?;
    Ok(ids)
}

/// What a peer is known to hold of a document.
pub(crate) fn peer_heads(
    conn: &Connection,
    path: &Path,
    peer: &str,
    doc_id: &str,
) -> Result<Option<Vec<ChangeHash>>> {
    let bytes: Option<Vec<u8>> = conn
        .query_row(
            "SELECT heads FROM peer_heads WHERE peer_id = ?1 AND doc_id = ?2",
            [peer, doc_id],
            |r| r.get(0),
        )
        .optional()
        .db(path)?;
    Ok(bytes.map(|b| decode_heads(&b)))
}

/// Heads as stored: 32 bytes each, concatenated.
pub fn encode_heads(heads: &[ChangeHash]) -> Vec<u8> {
    heads.iter().flat_map(|h| h.0).collect()
}

pub fn decode_heads(bytes: &[u8]) -> Vec<ChangeHash> {
    bytes
        .chunks_exact(32)
        .filter_map(|c| ChangeHash::try_from(c).ok())
        .collect()
}
