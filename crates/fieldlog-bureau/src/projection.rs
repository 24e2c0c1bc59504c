//! The projection: core's query tables (schools, visits, conflicts, decisions, targets,
//! courses…) derived from the bureau's documents by core's own code, so the bureau's
//! figures follow the same rules as a device's whatever the database. It lives in a SQLite
//! file of its own, `projection.sqlite3` in the data directory, on every backend: derived
//! data, rebuilt from the log if it is lost, and written without taking the records'
//! write lock, so projecting one round runs beside the next round's write.
//!
//! It catches up from the log: `projected` keeps the last sequence number projected and the
//! purge total seen, `projected_docs` each document's heads as projected. Catching up
//! re-projects the records the changes since those heads touched; when the purge total
//! moved or the log is behind the watermark (a restored backup), every row is rebuilt.
//! Writes catch up after their commit and reads before they run, so a read sees every
//! committed change, from any process writing to the database.
//!
//! Locks: the projection file's writer, then (only for a document no write of this
//! process handed over) the document cache. Writes never wait for the projection while
//! they hold the cache: they hand their committed documents over ([`Committed`]) and
//! catch up after releasing it.

use crate::Bureau;
use crate::error::Result;
use crate::storage::Storage;
use automerge::{Automerge, ChangeHash};
use fieldlog_bureau_sqlite::DbContext;
use fieldlog_core::DocId;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// The migrations of the projection file: core's query tables as a device has them, and
/// the progress tables. Append only.
pub const MIGRATIONS: &[&str] = &[
    fieldlog_core::projection::TABLES,
    fieldlog_core::projection::PHOTO_TABLE,
    fieldlog_core::review::TABLES,
    fieldlog_core::course::TABLES,
    fieldlog_core::course::MEMBERS_TABLE,
    fieldlog_bureau_sqlite::PROGRESS_TABLES,
];

/// The file the projection is in, with a connection that writes (catching up) and one
/// that reads, and the documents writes committed since the last catch-up.
#[derive(Debug)]
pub struct ProjectionFile {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    committed: Committed,
}

/// Documents as writes of this process committed them, by id (the latest of each), for
/// the next catch-up to project without the document cache. A copy is used only while its
/// heads are the stored ones.
#[derive(Debug, Default)]
pub(crate) struct Committed(Mutex<HashMap<String, Automerge>>);

impl Committed {
    pub(crate) fn hand_over(&self, doc_id: String, doc: Automerge) {
        self.lock().insert(doc_id, doc);
    }

    fn take(&self) -> HashMap<String, Automerge> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Automerge>> {
        // Copies of committed documents: a panic elsewhere cannot leave them half-written.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ProjectionFile {
    /// The projection in `path`, created as needed.
    pub fn open(path: &Path) -> Result<ProjectionFile> {
        let migrations = MIGRATIONS;
        let writer = fieldlog_core::db::open_with(path, migrations)?;
        // Derived rows, with their watermark in the same transactions: a power cut may
        // undo the last catch-up, which the next one redoes. No fsync of its own per write.
        writer
            .execute_batch("PRAGMA synchronous = NORMAL")
            .db(path)?;
        let reader = fieldlog_core::db::open_with(path, migrations)?;
        Ok(ProjectionFile {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            committed: Committed::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn committed(&self) -> &Committed {
        &self.committed
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Bureau {
    /// Brings the projection up to date with the log; with `members`, also rewrites the
    /// enrolled members the figures read.
    pub(crate) fn project(&self, members: bool) -> Result<()> {
        let storage: &dyn Storage = &**self.storage();
        let file = &self.inner.projection;
        let path = file.path();
        // Nothing to do is the usual case (every blob request asks): seen without locks.
        if !members {
            let (seq, purges) = projected(&file.reader(), path)?;
            let now = storage.changed_since(seq)?;
            if now.last_seq == seq && now.purges == purges {
                return Ok(());
            }
        }
        let mut conn = file.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db(path)?;
        if members {
            let list = self.enrolled_members(|_| true)?;
            fieldlog_core::course::replace_members(&tx, path, &list)?;
        }
        // Taken after the file's lock: whatever a write handed over before is here or was
        // projected by the catch-up that held the lock before.
        let committed = file.committed().take();
        let (seq, purges) = projected(&tx, path)?;
        let mut changed = storage.changed_since(seq)?;
        if changed.purges != purges || changed.last_seq < seq {
            fieldlog_core::projection::clear(&tx, path)?;
            tx.execute("DELETE FROM projected_docs", []).db(path)?;
            changed = storage.changed_since(0)?;
        }
        if changed.last_seq != seq || changed.purges != purges {
            let stored = storage.heads(&changed.doc_ids)?;
            for (id, now) in changed.doc_ids.iter().zip(stored) {
                let Some(doc_id) = DocId::parse(id) else {
                    continue;
                };
                let before: Vec<ChangeHash> = tx
                    .query_row(
                        "SELECT heads FROM projected_docs WHERE doc_id = ?1",
                        [id],
                        |r| r.get::<_, Vec<u8>>(0),
                    )
                    .optional()
                    .db(path)?
                    .map(|h| fieldlog_core::decode_heads(&h))
                    .unwrap_or_default();
                if before == now {
                    continue;
                }
                let heads = match committed.get(id).filter(|doc| doc.get_heads() == now) {
                    Some(doc) => project_doc(&tx, path, doc, &doc_id, &before)?,
                    // Written by another process, or by this one since its copy: the
                    // cache's copy, brought up to date from the storage.
                    None => {
                        let mut cache = self.inner.docs.lock();
                        let cached = cache.take(&mut &*storage, id, storage.bureau_actor())?;
                        let heads = project_doc(&tx, path, &cached.doc, &doc_id, &before);
                        cache.put(id.clone(), cached);
                        heads?
                    }
                };
                tx.execute(
                    "INSERT OR REPLACE INTO projected_docs (doc_id, heads) VALUES (?1, ?2)",
                    params![id, fieldlog_core::encode_heads(&heads)],
                )
                .db(path)?;
            }
            tx.execute(
                "UPDATE projected SET seq = ?1, purges = ?2",
                params![changed.last_seq, changed.purges],
            )
            .db(path)?;
        }
        Ok(tx.commit().db(path)?)
    }

    /// Has the projection caught up after a committed write, in the background: a round
    /// does not wait for it (reads catch up themselves before they run).
    pub(crate) fn project_after_write(&self) {
        self.inner.projector.wake();
    }

    /// Runs one of core's queries on the projection, caught up first.
    fn read<T>(
        &self,
        query: impl FnOnce(&Connection, &Path) -> fieldlog_core::Result<T>,
    ) -> Result<T> {
        self.project(true)?;
        let file = &self.inner.projection;
        let conn = file.reader();
        let tx = conn.unchecked_transaction().db(file.path())?;
        Ok(query(&tx, file.path())?)
    }

    /// Schools in the bureau's documents, by district then name.
    pub fn schools(&self) -> Result<Vec<fieldlog_domain::School>> {
        self.read(fieldlog_core::projection::schools)
    }

    /// Visits in the bureau's documents, newest first.
    pub fn visits(
        &self,
        filter: &fieldlog_core::VisitFilter,
    ) -> Result<Vec<fieldlog_domain::Visit>> {
        self.read(|conn, path| fieldlog_core::projection::visits(conn, path, filter))
    }

    /// Fields holding concurrent values, for a coordinator to settle.
    pub fn conflicts(&self) -> Result<Vec<fieldlog_core::Conflict>> {
        self.read(fieldlog_core::projection::conflicts)
    }

    /// The published figures over everything the bureau holds.
    pub fn report(&self, filter: &fieldlog_core::ReportFilter) -> Result<fieldlog_domain::Report> {
        self.read(|conn, path| fieldlog_core::projection::report(conn, path, filter))
    }

    /// What waits for a coordinator, region-wide (read-only).
    pub fn review_queue(
        &self,
        today: chrono::NaiveDate,
        unverified_after_days: u32,
    ) -> Result<fieldlog_core::queue::ReviewQueue> {
        self.read(|conn, path| {
            fieldlog_core::queue::queue(conn, path, today, unverified_after_days)
        })
    }

    /// The targets the coordinators set, with their progress over everything held.
    pub fn targets(
        &self,
        year: Option<i32>,
        district: Option<&fieldlog_domain::District>,
    ) -> Result<Vec<fieldlog_domain::TargetProgress>> {
        self.read(|conn, path| fieldlog_core::targets::progress(conn, path, year, district))
    }

    /// Writes the work ledger over everything held; returns the rows.
    pub fn export(
        &self,
        format: fieldlog_core::decide::Export,
        file: &Path,
        filter: &fieldlog_core::ReportFilter,
        offset: chrono::FixedOffset,
    ) -> Result<u64> {
        self.read(|conn, path| {
            fieldlog_core::decide::export(conn, path, format, file, filter, offset)
        })
    }

    /// The visits that refer to a photo file: each one's document and the size it records.
    pub(crate) fn photo_refs(&self, sha256: &str) -> Result<Vec<(DocId, u64)>> {
        self.project(false)?;
        let file = &self.inner.projection;
        let conn = file.reader();
        Ok(fieldlog_core::projection::photo_refs(
            &conn,
            file.path(),
            sha256,
        )?)
    }
}

/// The thread that catches the projection up after writes. It holds the bureau weakly and
/// ends when the bureau is dropped.
#[derive(Debug, Default)]
pub(crate) struct Projector {
    state: Mutex<Wanted>,
    woken: Condvar,
}

#[derive(Debug, Default)]
struct Wanted {
    catch_up: bool,
    closed: bool,
}

impl Projector {
    /// Starts the thread for `bureau`.
    pub(crate) fn start(bureau: &Bureau) -> Result<()> {
        let weak = Arc::downgrade(&bureau.inner);
        let projector = Arc::clone(&bureau.inner.projector);
        std::thread::Builder::new()
            .name("projection".into())
            .spawn(move || {
                while projector.next() {
                    let Some(inner) = weak.upgrade() else { break };
                    if let Err(error) = (Bureau { inner }).project(false) {
                        tracing::error!(error = ?error, "projecting after a write");
                    }
                }
            })
            .map_err(crate::Error::Thread)?;
        Ok(())
    }

    fn wake(&self) {
        self.lock().catch_up = true;
        self.woken.notify_one();
    }

    /// Ends the thread.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.woken.notify_one();
    }

    /// Waits until a catch-up is wanted (`true`) or the bureau is gone (`false`).
    fn next(&self) -> bool {
        let mut wanted = self.lock();
        while !wanted.catch_up && !wanted.closed {
            wanted = self
                .woken
                .wait(wanted)
                .unwrap_or_else(PoisonError::into_inner);
        }
        wanted.catch_up = false;
        !wanted.closed
    }

    fn lock(&self) -> MutexGuard<'_, Wanted> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The last sequence number projected and the purge total seen.
fn projected(conn: &Connection, path: &Path) -> Result<(u64, u64)> {
    Ok(conn
        .query_row("SELECT seq, purges FROM projected", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .db(path)?)
}

/// Re-projects the records a document's changes since `before` touched; returns the heads
/// projected.
fn project_doc(
    conn: &Connection,
    path: &Path,
    doc: &Automerge,
    doc_id: &DocId,
    before: &[ChangeHash],
) -> Result<Vec<ChangeHash>> {
    for record in fieldlog_core::projection::touched_records(doc, before) {
        fieldlog_core::projection::project_record(conn, path, doc, doc_id, &record)?;
    }
    Ok(doc.get_heads())
}
