//! The document lifecycle, the same over every [`Storage`]: take a document from the cache
//! (brought up to date with the log, or loaded from its snapshot and the changes after
//! it), admit a device's changes ([`crate::admit`]), append them to the log, snapshot now
//! and then, commit, put the document back. A refused or failed request stores nothing
//! and leaves no half-applied document in the cache: documents leave the cache while they
//! change and return only after the commit.

use crate::Bureau;
use crate::admit::admit;
use crate::error::{Error, Result};
use crate::registry::BUREAU_AUTHOR;
use crate::scope::scope_key;
use crate::storage::{
    Append, Applied, DocVersion, DocWriter, ImportSummary, IncomingDoc, LoggedChange, NewChange,
    PurgeReason, Purged, Rewrite, Storage, StoredDoc, WholeDocuments,
};
use automerge::{ActorId, Automerge, Change, ChangeHash};
use fieldlog_core::DocId;
use fieldlog_core::registry::{self, RegistryRows};
use fieldlog_domain::DeviceId;
use fieldlog_domain::sync::{ChangeSignature, MAX_PASSED_CHANGE_BYTES, Refusal};
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Tuning knobs; the defaults suit a county bureau.
#[derive(Debug, Clone, Copy)]
pub struct DocOptions {
    /// Save a snapshot of a document after this many new changes.
    pub snapshot_every: u32,
    /// How many documents stay loaded in memory.
    pub cache_docs: usize,
}

impl Default for DocOptions {
    fn default() -> Self {
        DocOptions {
            snapshot_every: 256,
            cache_docs: 256,
        }
    }
}

/// The documents held in memory. Its lock also orders this process's writes.
#[derive(Debug)]
pub(crate) struct Docs {
    cache: Mutex<DocCache>,
    options: DocOptions,
}

impl Docs {
    pub(crate) fn new(options: DocOptions) -> Docs {
        Docs {
            cache: Mutex::new(DocCache {
                docs: HashMap::new(),
                capacity: options.cache_docs,
                clock: 0,
            }),
            options,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, DocCache> {
        // The cache only ever holds committed documents, so a panic elsewhere cannot have
        // left it inconsistent.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug)]
pub(crate) struct CachedDoc {
    pub(crate) doc: Automerge,
    /// The version of the log the copy holds.
    version: DocVersion,
    used: u64,
}

#[derive(Debug)]
pub(crate) struct DocCache {
    docs: HashMap<String, CachedDoc>,
    capacity: usize,
    clock: u64,
}

/// Where a document is read from: the storage outside a write, or the write itself.
pub(crate) trait DocSource {
    fn version(&mut self, doc_id: &str) -> Result<DocVersion>;
    fn document(&mut self, doc_id: &str, after: Option<u64>) -> Result<StoredDoc>;
}

impl DocSource for &dyn Storage {
    fn version(&mut self, doc_id: &str) -> Result<DocVersion> {
        Ok(Storage::version(*self, doc_id)?)
    }
    fn document(&mut self, doc_id: &str, after: Option<u64>) -> Result<StoredDoc> {
        Ok(Storage::document(*self, doc_id, after)?)
    }
}

impl DocSource for Box<dyn DocWriter + '_> {
    fn version(&mut self, doc_id: &str) -> Result<DocVersion> {
        Ok(DocWriter::version(&mut **self, doc_id)?)
    }
    fn document(&mut self, doc_id: &str, after: Option<u64>) -> Result<StoredDoc> {
        Ok(DocWriter::document(&mut **self, doc_id, after)?)
    }
}

impl DocCache {
    /// Takes the document out of the cache, brought up to date with the storage (loaded
    /// from its snapshot and the log if it was not cached or was purged since).
    pub(crate) fn take(
        &mut self,
        source: &mut impl DocSource,
        doc_id: &str,
        actor: &ActorId,
    ) -> Result<CachedDoc> {
        let now = source.version(doc_id)?;
        let mut cached = match self.docs.remove(doc_id) {
            Some(cached)
                if cached.version.purges == now.purges
                    && cached.version.last_seq <= now.last_seq =>
            {
                cached
            }
            _ => load(source.document(doc_id, None)?, doc_id)?,
        };
        if cached.version.last_seq < now.last_seq {
            let newer = source.document(doc_id, Some(cached.version.last_seq))?;
            cached.version = replay(&mut cached.doc, doc_id, cached.version.last_seq, newer)?;
        }
        cached.doc.set_actor(actor.clone());
        Ok(cached)
    }

    pub(crate) fn put(&mut self, doc_id: String, mut cached: CachedDoc) {
        self.clock += 1;
        cached.used = self.clock;
        self.docs.insert(doc_id, cached);
        while self.docs.len() > self.capacity {
            let Some(oldest) = self
                .docs
                .iter()
                .min_by_key(|(_, c)| c.used)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            self.docs.remove(&oldest);
        }
    }
}

fn document_error(doc_id: &str) -> impl FnOnce(automerge::AutomergeError) -> Error + '_ {
    move |source| Error::Document {
        doc_id: doc_id.to_string(),
        source: Box::new(source),
    }
}

/// A document from its stored snapshot and the changes after it.
fn load(stored: StoredDoc, doc_id: &str) -> Result<CachedDoc> {
    let mut doc = match &stored.snapshot {
        Some(bytes) => Automerge::load(bytes).map_err(document_error(doc_id))?,
        None => Automerge::new(),
    };
    let from = stored.snapshot_seq;
    let version = replay(&mut doc, doc_id, from, stored)?;
    Ok(CachedDoc {
        doc,
        version,
        used: 0,
    })
}

/// Applies stored changes (those after `from`) to a document; returns the version it
/// then holds.
fn replay(doc: &mut Automerge, doc_id: &str, from: u64, stored: StoredDoc) -> Result<DocVersion> {
    let mut last_seq = from;
    let mut changes = Vec::with_capacity(stored.changes.len());
    for (seq, bytes) in stored.changes {
        changes
            .push(Change::from_bytes(bytes).map_err(|source| Error::StoredChange { seq, source })?);
        last_seq = seq;
    }
    doc.apply_changes(changes).map_err(document_error(doc_id))?;
    Ok(DocVersion {
        last_seq,
        purges: stored.version.purges,
    })
}

/// Who sent changes: the device (none for the bureau's own) and the signatures that came
/// with them (an author's, kept with its change).
#[derive(Debug, Clone, Copy)]
struct Provenance<'a> {
    device: Option<DeviceId>,
    signatures: &'a [ChangeSignature],
}

impl Bureau {
    /// Applies a device's changes to the bureau's documents in one transaction. Already
    /// held changes are skipped, changes whose dependencies are missing are left out (the
    /// device sends them again later), and any refusal from [`admit`] stores nothing.
    pub(crate) fn apply(
        &self,
        device: &crate::DeviceRecord,
        docs: Vec<IncomingDoc>,
    ) -> Result<Applied> {
        let applied = self.write(|tx, cache, actor, options| {
            let mut applied = Applied::default();
            let mut changed = Vec::new();
            for incoming in docs {
                let id = incoming.doc_id.to_string();
                let mut cached = cache.take(tx, &id, actor)?;
                let new = admit(
                    &mut cached.doc,
                    &incoming.doc_id,
                    device,
                    &incoming.authors,
                    incoming.changes,
                )?;
                let from = Provenance {
                    device: Some(device.id),
                    signatures: &incoming.signatures,
                };
                append(tx, &incoming.doc_id, from, &new, &mut cached, options)?;
                applied.accepted += new.len();
                applied
                    .heads
                    .push((incoming.doc_id, cached.doc.get_heads()));
                changed.push((id, cached));
            }
            Ok((applied, changed))
        })?;
        self.project_after_write();
        Ok(applied)
    }

    /// Writes registry rows into the district documents, signed by the bureau's actor.
    /// Rows match existing schools by name within their district; a school already holding
    /// the same fields and `registered` is left alone, so importing a file twice changes
    /// nothing.
    pub(crate) fn import_registry(&self, rows: RegistryRows) -> Result<ImportSummary> {
        let now_ms = self.now_ms();
        let summary = self.write(|tx, cache, actor, options| {
            let mut summary = ImportSummary::default();
            let mut changed = Vec::new();
            for (district, rows) in rows.0 {
                let doc_id = DocId::registry(&district);
                let id = doc_id.to_string();
                let mut cached = cache.take(tx, &id, actor)?;
                let before = cached.doc.get_heads();
                registry::import_into(&mut cached.doc, rows, BUREAU_AUTHOR, now_ms, &mut summary)
                    .map_err(document_error(&id))?;
                let new = cached.doc.get_changes(&before);
                let from = Provenance {
                    device: None,
                    signatures: &[],
                };
                append(tx, &doc_id, from, &new, &mut cached, options)?;
                changed.push((id, cached));
            }
            Ok((summary, changed))
        })?;
        self.project_after_write();
        Ok(summary)
    }

    /// Removes changes that devices sent larger than `max_bytes`, with every change that
    /// builds on them, and rebuilds what they touched; returns what was removed.
    pub fn purge(&self, max_bytes: usize) -> Result<Vec<Purged>> {
        let purged = self.write(|tx, cache, _, _| {
            let mut purged = Vec::new();
            for id in tx.oversized_documents(max_bytes)? {
                // The document is rebuilt from what its log keeps; the cache drops it.
                let _ = cache.docs.remove(&id);
                let (kept, removed) = purge_log(tx.log(&id)?, &id, max_bytes)?;
                let mut doc = Automerge::new();
                let last_seq = kept.last().map_or(0, |(seq, _)| *seq);
                let change_count = kept.len() as u64;
                doc.apply_changes(kept.into_iter().map(|(_, c)| c))
                    .map_err(document_error(&id))?;
                let gone: Vec<u64> = removed.iter().map(|p| p.seq).collect();
                tx.rewrite(&Rewrite {
                    doc_id: &id,
                    removed: &gone,
                    snapshot: &doc.save(),
                    heads: &doc.get_heads(),
                    last_seq,
                    change_count,
                })?;
                purged.extend(removed);
            }
            Ok((purged, Vec::new()))
        })?;
        self.project_after_write();
        Ok(purged)
    }

    /// The bureau's heads of each document (empty for a document it does not hold).
    pub(crate) fn heads(&self, docs: &[DocId]) -> Result<Vec<(DocId, Vec<ChangeHash>)>> {
        let ids: Vec<String> = docs.iter().map(DocId::to_string).collect();
        let heads = self.storage().heads(&ids)?;
        Ok(docs.iter().cloned().zip(heads).collect())
    }

    /// A first sync's delivery ([`fieldlog_domain::sync::SyncResponse::resume`]): the
    /// log's newest sequence number, and the documents in scope after `after` in document
    /// order, whole (Automerge's document encoding), up to `max_bytes` (at least one).
    /// `None` when a document in scope holds a change no device takes
    /// ([`MAX_PASSED_CHANGE_BYTES`]): then the log is paged as usual.
    pub(crate) fn whole_documents(
        &self,
        scope_keys: &[String],
        after: Option<&str>,
        max_bytes: usize,
    ) -> Result<Option<WholeDocuments>> {
        let storage = self.storage();
        let Some(in_scope) =
            storage.documents_in_scope(scope_keys, after, MAX_PASSED_CHANGE_BYTES)?
        else {
            return Ok(None);
        };
        let mut whole = WholeDocuments {
            last_seq: in_scope.last_seq,
            ..Default::default()
        };
        let mut bytes = 0usize;
        let mut cache = self.inner.docs.lock();
        let actor = storage.bureau_actor();
        for id in &in_scope.doc_ids {
            if !whole.documents.is_empty() && bytes >= max_bytes {
                whole.more = true;
                break;
            }
            let Some(doc_id) = DocId::parse(id) else {
                continue;
            };
            let cached = cache.take(&mut &**storage, id, actor)?;
            let saved = cached.doc.save();
            bytes += saved.len();
            whole
                .documents
                .push((doc_id, cached.doc.get_heads(), saved));
            cache.put(id.clone(), cached);
        }
        Ok(Some(whole))
    }

    /// Runs one write: a storage transaction under the cache's lock. `write` returns its
    /// result and the documents it changed, which go back into the cache once committed.
    fn write<T>(
        &self,
        write: impl FnOnce(
            &mut Box<dyn DocWriter + '_>,
            &mut DocCache,
            &ActorId,
            DocOptions,
        ) -> Result<(T, Vec<(String, CachedDoc)>)>,
    ) -> Result<T> {
        let storage = self.storage();
        let mut cache = self.inner.docs.lock();
        let mut tx = storage.begin()?;
        let (result, changed) = write(
            &mut tx,
            &mut cache,
            storage.bureau_actor(),
            self.inner.docs.options,
        )?;
        tx.commit()?;
        let committed = self.inner.projection.committed();
        for (id, cached) in changed {
            committed.hand_over(id.clone(), cached.doc.clone());
            cache.put(id, cached);
        }
        Ok(result)
    }
}

/// Appends newly applied changes to the log, snapshotting the document when due.
fn append(
    tx: &mut Box<dyn DocWriter + '_>,
    doc_id: &DocId,
    from: Provenance<'_>,
    new: &[Change],
    cached: &mut CachedDoc,
    options: DocOptions,
) -> Result<()> {
    if new.is_empty() {
        return Ok(());
    }
    let id = doc_id.to_string();
    let hashes: Vec<ChangeHash> = new.iter().map(Change::hash).collect();
    if let Some((hash, other)) = tx
        .held(&hashes)?
        .into_iter()
        .find(|(_, other)| *other != id)
    {
        return Err(Error::refused(
            Refusal::Malformed,
            format!("change {hash} sent for {id} belongs to {other}"),
        ));
    }
    let heads = cached.doc.get_heads();
    let scope = scope_key(doc_id);
    let appended = tx.append(&Append {
        doc_id: &id,
        scope_key: &scope,
        device: from.device,
        changes: new
            .iter()
            .map(|change| NewChange {
                hash: change.hash(),
                bytes: change.raw_bytes(),
                signature: from
                    .signatures
                    .iter()
                    .find(|s| s.hash == change.hash().0)
                    .map(|s| &s.signature[..]),
            })
            .collect(),
        heads: &heads,
    })?;
    cached.version.last_seq = appended.last_seq;
    if appended.since_snapshot >= u64::from(options.snapshot_every) {
        tx.put_snapshot(&id, appended.last_seq, &cached.doc.save())?;
    }
    Ok(())
}

/// The changes a document keeps (with their `seq`, in order), and what purge removed.
type LogSplit = (Vec<(u64, Change)>, Vec<Purged>);

/// Splits a document's log into the changes to keep and those `purge` removes: sent by a
/// device and larger than `max_bytes`, or building on one removed.
fn purge_log(log: Vec<LoggedChange>, doc_id: &str, max_bytes: usize) -> Result<LogSplit> {
    let mut removed_hashes: HashSet<Vec<u8>> = HashSet::new();
    let (mut kept, mut removed) = (Vec::new(), Vec::new());
    for logged in log {
        let size = logged.bytes.len();
        let reason = if logged.device_id.is_some() && size > max_bytes {
            Some(PurgeReason::TooLarge)
        } else {
            let seq = logged.seq;
            let change = Change::from_bytes(logged.bytes)
                .map_err(|source| Error::StoredChange { seq, source })?;
            if change
                .deps()
                .iter()
                .any(|d| removed_hashes.contains(&d.0[..]))
            {
                Some(PurgeReason::DependsOnRemoved)
            } else {
                kept.push((seq, change));
                None
            }
        };
        if let Some(reason) = reason {
            removed.push(Purged {
                seq: logged.seq,
                doc_id: doc_id.to_string(),
                hash: hex::encode(&logged.hash),
                device_id: logged.device_id,
                bytes: size,
                reason,
            });
            removed_hashes.insert(logged.hash);
        }
    }
    Ok((kept, removed))
}
