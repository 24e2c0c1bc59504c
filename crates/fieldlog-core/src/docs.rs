//! Automerge documents in SQLite: each document is a run of chunks (a snapshot, then the
//! changes saved after it), cached in memory and reloaded when another process wrote to it.

use crate::error::{DbContext, Error, Result};
use automerge::{ActorId, Automerge, Change, ChangeHash, ReadDoc, legacy};
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
        let (generation, chunks, first) = chunk_run(conn, path, doc_id)?;
        if let Some(cached) = self.0.get_mut(doc_id)
            && cached.generation < generation
            && first <= cached.generation
        {
            // Only chunks appended since (by `append`, or by another process): apply them.
            let mut stmt = conn
                .prepare_cached(
                    "SELECT bytes FROM doc_chunks WHERE doc_id = ?1 AND seq > ?2 ORDER BY seq",
                )
                .db(path)?;
            let mut bytes = Vec::new();
            for chunk in stmt
                .query_map(params![doc_id, cached.generation], |r| {
                    r.get::<_, Vec<u8>>(0)
                })
                .db(path)?
            {
                bytes.extend(chunk.db(path)?);
            }
            cached
                .doc
                .load_incremental(&bytes)
                .map_err(|source| Error::Document {
                    doc_id: doc_id.to_string(),
                    source: Box::new(source),
                })?;
            cached.generation = generation;
            cached.chunks = chunks;
        }
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
        write_base(conn, path, doc_id, &Base::of(&cached.doc), next)
    }

    /// What a new change to `doc_id` builds on, as recorded with its last chunk; `None` when
    /// that is not known (a store older than the record, or written around it), and then
    /// the document must be loaded.
    pub(crate) fn base(conn: &Connection, path: &Path, doc_id: &str) -> Result<Option<Base>> {
        let (generation, chunks, _) = chunk_run(conn, path, doc_id)?;
        if chunks == 0 {
            return Ok(Some(Base {
                heads: Vec::new(),
                max_op: 0,
                local_seq: 0,
                generation: 0,
            }));
        }
        if chunks >= APPEND_UNTIL_CHUNKS {
            // Time to load it and compact (`persist`), so loading stays fast.
            return Ok(None);
        }
        let row: Option<(Vec<u8>, i64, i64, i64)> = conn
            .prepare_cached(
                "SELECT heads, max_op, local_seq, generation FROM doc_heads WHERE doc_id = ?1",
            )
            .db(path)?
            .query_row([doc_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
            .db(path)?;
        Ok(row
            .filter(|(_, _, _, recorded)| *recorded == generation)
            .map(|(heads, max_op, local_seq, generation)| Base {
                heads: decode_heads(&heads),
                max_op: u64::try_from(max_op).unwrap_or(0),
                local_seq: u64::try_from(local_seq).unwrap_or(0),
                generation,
            }))
    }

    /// `change`, made by this device in an empty scratch document, as if made in the
    /// document `base` describes: its operations renumbered to follow the document's and
    /// its dependencies the document's heads. Only for changes that create new records:
    /// every operation's object and predecessors must be the change's own. Appended with
    /// [`DocCache::append`], the document need not be loaded; a cached copy catches up on
    /// its next use ([`DocCache::fresh`]).
    pub(crate) fn rebase(base: &Base, change: &Change) -> Change {
        let mut expanded = change.decode();
        let renumber = |id: &mut legacy::OpId| id.0 += base.max_op;
        for op in &mut expanded.operations {
            if let legacy::ObjectId::Id(id) = &mut op.obj {
                renumber(id);
            }
            op.pred = std::mem::replace(&mut op.pred, legacy::SortedVec::new())
                .into_iter()
                .map(|mut id| {
                    renumber(&mut id);
                    id
                })
                .collect();
        }
        expanded.seq = base.local_seq + 1;
        expanded.start_op = expanded.start_op.saturating_add(base.max_op);
        expanded.deps = base.heads.clone();
        expanded.hash = None;
        Change::from(expanded)
    }

    /// Appends a change made by [`DocCache::rebase`] on `base` as the document's next chunk.
    pub(crate) fn append(
        conn: &Connection,
        path: &Path,
        doc_id: &str,
        base: &Base,
        rebased: &Change,
    ) -> Result<()> {
        let next = base.generation + 1;
        conn.prepare_cached("INSERT INTO doc_chunks (doc_id, seq, bytes) VALUES (?1, ?2, ?3)")
            .db(path)?
            .execute(params![doc_id, next, rebased.raw_bytes()])
            .db(path)?;
        let after = Base {
            heads: vec![rebased.hash()],
            max_op: rebased.max_op(),
            local_seq: rebased.seq(),
            generation: next,
        };
        write_base(conn, path, doc_id, &after, next)
    }
}

/// Fast appends stop at this many chunks: the next write loads the document and compacts it.
const APPEND_UNTIL_CHUNKS: i64 = 256;

/// What a new change to a document builds on: its heads, its highest operation counter and
/// this device's last sequence number in it, at chunk `generation`.
#[derive(Debug, Clone)]
pub(crate) struct Base {
    heads: Vec<ChangeHash>,
    max_op: u64,
    pub(crate) local_seq: u64,
    generation: i64,
}

impl Base {
    pub(crate) fn of(doc: &Automerge) -> Base {
        let local = doc.get_last_local_change();
        let heads = doc.get_heads();
        // Every change numbers its operations above those of its dependencies, so the
        // heads (and this device's own last change) hold the highest counter.
        let max_op = heads
            .iter()
            .filter_map(|h| doc.get_change_by_hash(h))
            .chain(local.clone())
            .map(|c| c.max_op())
            .max()
            .unwrap_or(0);
        Base {
            heads,
            max_op,
            local_seq: local.map_or(0, |c| c.seq()),
            generation: 0,
        }
    }
}

fn write_base(
    conn: &Connection,
    path: &Path,
    doc_id: &str,
    base: &Base,
    generation: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO doc_heads (doc_id, heads, max_op, local_seq, generation)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .db(path)?
    .execute(params![
        doc_id,
        encode_heads(&base.heads),
        i64::try_from(base.max_op).unwrap_or(i64::MAX),
        i64::try_from(base.local_seq).unwrap_or(i64::MAX),
        generation
    ])
    .db(path)?;
    Ok(())
}

/// A document's chunk run: its last `seq` (the generation), how many chunks and the first
/// `seq`. Sequence numbers have no gaps (each write takes the next; compaction replaces the
/// whole run by one chunk), so two index lookups give all three without a scan.
fn chunk_run(conn: &Connection, path: &Path, doc_id: &str) -> Result<(i64, i64, i64)> {
    let (last, first): (Option<i64>, Option<i64>) = conn
        .prepare_cached(
            "SELECT (SELECT max(seq) FROM doc_chunks WHERE doc_id = ?1),
                    (SELECT min(seq) FROM doc_chunks WHERE doc_id = ?1)",
        )
        .db(path)?
        .query_row([doc_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .db(path)?;
    Ok(match (last, first) {
        (Some(last), Some(first)) => (last, last - first + 1, first),
        _ => (0, 0, 0),
    })
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
