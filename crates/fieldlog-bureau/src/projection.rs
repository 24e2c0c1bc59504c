//! The projection: core's query tables (schools, visits, conflicts, decisions, targets,
//! courses…) derived from the bureau's documents by core's own code, so the bureau's
//! figures follow the same rules as a device's whatever the database. It lives in a SQLite
//! file: for the embedded backend the bureau's file itself, for PostgreSQL
//! `projection.sqlite3` in the data directory (derived data, rebuilt from the database if
//! it is lost).
//!
//! It catches up from the log: `projected` keeps the last sequence number projected and the
//! purge total seen, `projected_docs` each document's heads as projected. Catching up
//! re-projects the records the changes since those heads touched; when the purge total
//! moved, every row is rebuilt. Writes catch up after their commit and reads before they
//! run, so a read sees every committed change, from any process writing to the database.

use crate::Bureau;
use crate::error::Result;
use crate::storage::Storage;
use fieldlog_bureau_sqlite::DbContext;
use fieldlog_core::DocId;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The migrations of a projection file of its own (`projection.sqlite3`): core's query
/// tables as a device has them, and the progress tables. Append only.
pub const STANDALONE_MIGRATIONS: &[&str] = &[
    fieldlog_core::projection::TABLES,
    fieldlog_core::projection::PHOTO_TABLE,
    fieldlog_core::review::TABLES,
    fieldlog_core::course::TABLES,
    fieldlog_core::course::MEMBERS_TABLE,
    fieldlog_bureau_sqlite::PROGRESS_TABLES,
];

/// The file the projection is in, with a connection that writes (catching up) and one
/// that reads.
#[derive(Debug)]
pub struct ProjectionFile {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

impl ProjectionFile {
    /// A projection in its own file, created as needed.
    pub fn standalone(path: &Path) -> Result<ProjectionFile> {
        ProjectionFile::open(path, STANDALONE_MIGRATIONS)
    }

    /// The projection inside the embedded backend's file.
    pub fn embedded(storage: &crate::SqliteStorage) -> Result<ProjectionFile> {
        ProjectionFile::open(storage.path(), crate::sqlite::MIGRATIONS)
    }

    fn open(path: &Path, migrations: &[&str]) -> Result<ProjectionFile> {
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
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
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
        // The document cache first, then the file's write lock: the order writes take them
        // in (the cache, then the storage's transaction, which for the embedded backend is
        // the same file's lock). The other order deadlocks against a write.
        let mut cache = self.inner.docs.lock();
        let mut conn = file.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db(path)?;
        if members {
            let list = self.enrolled_members(|_| true)?;
            fieldlog_core::course::replace_members(&tx, path, &list)?;
        }
        let (seq, purges) = projected(&tx, path)?;
        let mut changed = storage.changed_since(seq)?;
        if changed.purges != purges {
            fieldlog_core::projection::clear(&tx, path)?;
            tx.execute("DELETE FROM projected_docs", []).db(path)?;
            changed = storage.changed_since(0)?;
        }
        if changed.last_seq != seq || changed.purges != purges {
            let actor = storage.bureau_actor();
            for id in &changed.doc_ids {
                let Some(doc_id) = DocId::parse(id) else {
                    continue;
                };
                let before: Vec<automerge::ChangeHash> = tx
                    .query_row(
                        "SELECT heads FROM projected_docs WHERE doc_id = ?1",
                        [id],
                        |r| r.get::<_, Vec<u8>>(0),
                    )
                    .optional()
                    .db(path)?
                    .map(|h| fieldlog_core::decode_heads(&h))
                    .unwrap_or_default();
                let cached = cache.take(&mut &*storage, id, actor)?;
                for record in fieldlog_core::projection::touched_records(&cached.doc, &before) {
                    fieldlog_core::projection::project_record(
                        &tx,
                        path,
                        &cached.doc,
                        &doc_id,
                        &record,
                    )?;
                }
                tx.execute(
                    "INSERT OR REPLACE INTO projected_docs (doc_id, heads) VALUES (?1, ?2)",
                    params![id, fieldlog_core::encode_heads(&cached.doc.get_heads())],
                )
                .db(path)?;
                cache.put(id.clone(), cached);
            }
            tx.execute(
                "UPDATE projected SET seq = ?1, purges = ?2",
                params![changed.last_seq, changed.purges],
            )
            .db(path)?;
        }
        Ok(tx.commit().db(path)?)
    }

    /// Catches the projection up after a committed write. A failure here loses nothing
    /// (the next read catches up again), so it is logged, not returned.
    pub(crate) fn project_after_write(&self) {
        if let Err(error) = self.project(false) {
            tracing::error!(error = ?error, "projecting after a write");
        }
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

/// The last sequence number projected and the purge total seen.
fn projected(conn: &Connection, path: &Path) -> Result<(u64, u64)> {
    Ok(conn
        .query_row("SELECT seq, purges FROM projected", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .db(path)?)
}
