//! [`SqliteStorage`]: the whole bureau in one SQLite file, `bureau.sqlite3` (WAL,
//! `synchronous=FULL`).
//!
//! - `changes` is the log: every accepted change with its sequence number (`seq`), its
//!   document, the document's scope key, the sending device (`NULL` for the bureau) and its
//!   bytes. Sync answers are ranges of it.
//! - `documents` keeps each document's heads, so heads never need the document loaded;
//!   `doc_snapshots` keeps a saved copy every [`SqliteOptions::snapshot_every`] changes, so
//!   loading a document replays only the changes after it.
//! - Loaded documents stay in memory ([`SqliteOptions::cache_docs`] of them). A cached copy
//!   remembers the last `seq` it holds and catches up from the log when another process
//!   (an admin command) wrote to the file. A write takes the copy out of the cache and puts
//!   it back only after the commit, so a refused or failed request never leaves a
//!   half-applied document behind.
//! - One connection writes (behind a mutex; SQLite has one writer anyway) and one reads.
//!   With WAL, a reader sees a snapshot in which the visible `seq`s form a prefix, which is
//!   what cursors rely on.

use crate::admit::admit;
use crate::error::{DbContext, Error, Result};
use crate::registry::BUREAU_AUTHOR;
use crate::scope::scope_key;
use crate::secret::SecretHash;
use crate::storage::{
    Applied, ChangesPage, ChangesQuery, DeviceRecord, Enrolled, ImportSummary, IncomingDoc,
    NewCode, PurgeReason, Purged, Redemption, Storage, StoredChange, Team, TeamType,
    WholeDocuments,
};
use automerge::{ActorId, Automerge, Change, ChangeHash};
use fieldlog_core::registry::{self, RegistryRows};
use fieldlog_core::{Conflict, DocId, ReportFilter, VisitFilter};
use fieldlog_domain::sync::{ChangeSignature, MAX_PASSED_CHANGE_BYTES, PublicKey, Refusal};
use fieldlog_domain::{DeviceId, District, Role, TeamId};
use fieldlog_domain::{Report, School, Visit};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

pub const DB_FILE: &str = "bureau.sqlite3";

/// Applied in order, once each. Never edit one that has shipped: append a new one. The
/// second is core's query tables, so the bureau answers the same queries as a device.
/// `tests::migrations_are_append_only` pins the hash of every entry.
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
-- The bureau itself: the Automerge actor it writes registries with.
CREATE TABLE bureau (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    actor TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE teams (
    team TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    districts TEXT NOT NULL, -- JSON array of district names
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE members (
    team TEXT NOT NULL REFERENCES teams (team),
    member TEXT NOT NULL,
    role TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (team, member)
) WITHOUT ROWID;
-- Enrollment codes, by sha256; single use.
CREATE TABLE codes (
    code_hash TEXT PRIMARY KEY,
    team TEXT NOT NULL REFERENCES teams (team),
    member TEXT NOT NULL,
    role TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    device_id TEXT
) WITHOUT ROWID;
CREATE TABLE devices (
    device_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    team TEXT NOT NULL REFERENCES teams (team),
    member TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    enrolled_at INTEGER NOT NULL,
    revoked_at INTEGER
) WITHOUT ROWID;
-- Which device signs with each Automerge actor; NULL is the bureau itself.
CREATE TABLE device_actors (
    actor TEXT PRIMARY KEY,
    device_id TEXT REFERENCES devices (device_id)
) WITHOUT ROWID;
CREATE INDEX device_actors_by_device ON device_actors (device_id);
-- Every accepted change, numbered in the order it was accepted.
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL,
    scope_key TEXT NOT NULL,
    hash BLOB NOT NULL UNIQUE,
    device_id TEXT, -- NULL: written by the bureau
    bytes BLOB NOT NULL
);
CREATE INDEX changes_by_scope ON changes (scope_key, seq, device_id);
CREATE INDEX changes_by_doc ON changes (doc_id, seq);
CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY,
    scope_key TEXT NOT NULL,
    heads BLOB NOT NULL, -- 32-byte hashes, concatenated
    last_seq INTEGER NOT NULL,
    change_count INTEGER NOT NULL,
    since_snapshot INTEGER NOT NULL
) WITHOUT ROWID;
-- A saved copy of each document, holding every change up to `upto_seq`.
CREATE TABLE doc_snapshots (
    doc_id TEXT PRIMARY KEY,
    upto_seq INTEGER NOT NULL,
    bytes BLOB NOT NULL
) WITHOUT ROWID;
"#,
    fieldlog_core::projection::TABLES,
    fieldlog_core::projection::PHOTO_TABLE,
    r#"
-- Each device's ed25519 public key (32 bytes), which its change signatures verify under.
ALTER TABLE devices ADD COLUMN signing_key BLOB;
-- The author device's signature of a change, when one came with it.
ALTER TABLE changes ADD COLUMN signature BLOB;
-- Bumped when `purge` removes changes from a document, so cached copies are reloaded.
ALTER TABLE documents ADD COLUMN purges INTEGER NOT NULL DEFAULT 0;
"#,
    fieldlog_core::review::TABLES,
    fieldlog_core::course::TABLES,
    r#"
-- The members the bureau enrolled (a device not revoked), by the name core's figures read.
CREATE VIEW team_members AS
SELECT DISTINCT d.team AS team, d.member AS name, d.role AS role, t.districts AS districts
FROM devices d JOIN teams t ON t.team = d.team
WHERE d.revoked_at IS NULL;
"#,
];

/// Tuning knobs; the defaults suit a county bureau.
#[derive(Debug, Clone, Copy)]
pub struct SqliteOptions {
    /// Save a snapshot of a document after this many new changes.
    pub snapshot_every: u32,
    /// How many documents stay loaded in memory.
    pub cache_docs: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            snapshot_every: 256,
            cache_docs: 256,
        }
    }
}

#[derive(Debug)]
pub struct SqliteStorage {
    path: PathBuf,
    actor: ActorId,
    options: SqliteOptions,
    writer: Mutex<Writer>,
    reader: Mutex<Connection>,
}

#[derive(Debug)]
struct Writer {
    conn: Connection,
    docs: DocCache,
}

impl SqliteStorage {
    /// Opens (creating if needed) `bureau.sqlite3` in `dir`, and the bureau's actor the
    /// first time.
    pub fn open(dir: &Path, options: SqliteOptions, now_ms: i64) -> Result<SqliteStorage> {
        let path = dir.join(DB_FILE);
        let conn = fieldlog_core::db::open_with(&path, MIGRATIONS)?;
        let actor = bureau_actor(&conn, &path, now_ms)?;
        let reader = fieldlog_core::db::open_with(&path, MIGRATIONS)?;
        Ok(SqliteStorage {
            writer: Mutex::new(Writer {
                conn,
                docs: DocCache::new(options.cache_docs),
            }),
            reader: Mutex::new(reader),
            path,
            actor,
            options,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        // The cache only ever holds committed documents, so a panic elsewhere cannot have
        // left it inconsistent.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends newly applied changes (sent as `from` says) to the log and updates the
    /// document's row.
    /// Also rewrites the query rows of every record the changes touched (`before` is the
    /// document's heads before them), in the same transaction.
    fn store_changes(
        &self,
        tx: &rusqlite::Transaction<'_>,
        doc_id: &DocId,
        from: Provenance<'_>,
        new: &[Change],
        cached: &mut CachedDoc,
        before: &[ChangeHash],
    ) -> Result<()> {
        if new.is_empty() {
            return Ok(());
        }
        for record in fieldlog_core::projection::touched_records(&cached.doc, before) {
            fieldlog_core::projection::project_record(
                tx,
                &self.path,
                &cached.doc,
                doc_id,
                &record,
            )?;
        }
        let path = &self.path;
        let id = doc_id.to_string();
        let scope = scope_key(doc_id);
        let device = from.device.map(|d| d.to_string());
        let mut elsewhere = tx
            .prepare_cached("SELECT doc_id FROM changes WHERE hash = ?1")
            .db(path)?;
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO changes (doc_id, scope_key, hash, device_id, bytes, signature)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .db(path)?;
        for change in new {
            let hash = change.hash();
            let other: Option<String> = elsewhere
                .query_row([&hash.0[..]], |r| r.get(0))
                .optional()
                .db(path)?;
            if let Some(other) = other {
                return Err(Error::refused(
                    Refusal::Malformed,
                    format!("change {hash} sent for {id} belongs to {other}"),
                ));
            }
            let signature = from
                .signatures
                .iter()
                .find(|s| s.hash == hash.0)
                .map(|s| &s.signature[..]);
            insert
                .execute(params![
                    id,
                    scope,
                    &hash.0[..],
                    device,
                    change.raw_bytes(),
                    signature
                ])
                .db(path)?;
        }
        let last_seq = tx.last_insert_rowid();
        let count = i64::try_from(new.len()).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO documents (doc_id, scope_key, heads, last_seq, change_count, since_snapshot)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT (doc_id) DO UPDATE SET
                 heads = excluded.heads,
                 last_seq = excluded.last_seq,
                 change_count = change_count + excluded.change_count,
                 since_snapshot = since_snapshot + excluded.since_snapshot",
            params![id, scope, fieldlog_core::encode_heads(&cached.doc.get_heads()), last_seq, count],
        )
        .db(path)?;
        cached.last_seq = last_seq;
        let since: i64 = tx
            .query_row(
                "SELECT since_snapshot FROM documents WHERE doc_id = ?1",
                [&id],
                |r| r.get(0),
            )
            .db(path)?;
        if since >= i64::from(self.options.snapshot_every) {
            tx.execute(
                "INSERT OR REPLACE INTO doc_snapshots (doc_id, upto_seq, bytes) VALUES (?1, ?2, ?3)",
                params![id, last_seq, cached.doc.save()],
            )
            .db(path)?;
            tx.execute(
                "UPDATE documents SET since_snapshot = 0 WHERE doc_id = ?1",
                [&id],
            )
            .db(path)?;
        }
        Ok(())
    }
}

impl Storage for SqliteStorage {
    fn bureau_actor(&self) -> &ActorId {
        &self.actor
    }

    fn add_team(&self, team: &Team, now_ms: i64) -> Result<()> {
        let path = &self.path;
        let w = self.writer();
        let districts = districts_json(&team.districts);
        let inserted = w
            .conn
            .execute(
                "INSERT INTO teams (team, kind, districts, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (team) DO NOTHING",
                params![team.id.as_str(), team.kind.key(), districts, now_ms],
            )
            .db(path)?;
        if inserted == 0 {
            return Err(Error::TeamExists(team.id.clone()));
        }
        Ok(())
    }

    fn schools(&self) -> Result<Vec<School>> {
        Ok(fieldlog_core::projection::schools(
            &self.reader(),
            &self.path,
        )?)
    }

    fn visits(&self, filter: &VisitFilter) -> Result<Vec<Visit>> {
        Ok(fieldlog_core::projection::visits(
            &self.reader(),
            &self.path,
            filter,
        )?)
    }

    fn conflicts(&self) -> Result<Vec<Conflict>> {
        Ok(fieldlog_core::projection::conflicts(
            &self.reader(),
            &self.path,
        )?)
    }

    fn report(&self, filter: &ReportFilter) -> Result<Report> {
        Ok(fieldlog_core::projection::report(
            &self.reader(),
            &self.path,
            filter,
        )?)
    }

    fn review_queue(
        &self,
        today: chrono::NaiveDate,
        unverified_after_days: u32,
    ) -> Result<fieldlog_core::queue::ReviewQueue> {
        Ok(fieldlog_core::queue::queue(
            &self.reader(),
            &self.path,
            today,
            unverified_after_days,
        )?)
    }

    fn targets(
        &self,
        year: Option<i32>,
        district: Option<&fieldlog_domain::District>,
    ) -> Result<Vec<fieldlog_domain::TargetProgress>> {
        Ok(fieldlog_core::targets::progress(
            &self.reader(),
            &self.path,
            year,
            district,
        )?)
    }

    fn export(
        &self,
        format: fieldlog_core::decide::Export,
        file: &std::path::Path,
        filter: &ReportFilter,
        offset: chrono::FixedOffset,
    ) -> Result<u64> {
        Ok(fieldlog_core::decide::export(
            &self.reader(),
            &self.path,
            format,
            file,
            filter,
            offset,
        )?)
    }

    fn photo_refs(&self, sha256: &str) -> Result<Vec<(DocId, u64)>> {
        Ok(fieldlog_core::projection::photo_refs(
            &self.reader(),
            &self.path,
            sha256,
        )?)
    }

    fn teams(&self) -> Result<Vec<Team>> {
        let conn = self.reader();
        read_teams(&conn, &self.path)
    }

    fn add_code(&self, code: &NewCode) -> Result<()> {
        let path = &self.path;
        let mut w = self.writer();
        let tx = w
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db(path)?;
        if read_team(&tx, path, &code.team)?.is_none() {
            return Err(Error::UnknownTeam(code.team.clone()));
        }
        tx.execute(
            "INSERT INTO members (team, member, role, added_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (team, member) DO UPDATE SET role = excluded.role",
            params![
                code.team.as_str(),
                code.member,
                code.role.key(),
                code.issued_at
            ],
        )
        .db(path)?;
        tx.execute(
            "INSERT INTO codes (code_hash, team, member, role, issued_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                code.code.as_str(),
                code.team.as_str(),
                code.member,
                code.role.key(),
                code.issued_at,
                code.expires_at
            ],
        )
        .db(path)?;
        tx.commit().db(path)
    }

    fn redeem_code(&self, r: &Redemption) -> Result<Enrolled> {
        let path = &self.path;
        let mut w = self.writer();
        let tx = w
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db(path)?;
        let code: Option<(String, String, String, i64, Option<i64>)> = tx
            .query_row(
                "SELECT team, member, role, expires_at, used_at FROM codes WHERE code_hash = ?1",
                [r.code.as_str()],
                |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                    ))
                },
            )
            .optional()
            .db(path)?;
        let bad_code = |why: &str| Err(Error::refused(Refusal::BadCode, why));
        let Some((team, member, role, expires_at, used_at)) = code else {
            return bad_code("unknown enrollment code");
        };
        if used_at.is_some() {
            return bad_code("this enrollment code was already used");
        }
        if r.now_ms >= expires_at {
            return bad_code("this enrollment code has expired");
        }
        let (Ok(team), Ok(role)) = (TeamId::parse(&team), Role::parse(&role)) else {
            return bad_code("this enrollment code names an unknown team");
        };
        let Some(team) = read_team(&tx, path, &team)? else {
            return bad_code("this enrollment code names an unknown team");
        };
        for actor in &r.actors {
            let taken: Option<Option<String>> = tx
                .query_row(
                    "SELECT device_id FROM device_actors WHERE actor = ?1",
                    [actor.to_hex_string()],
                    |row| row.get(0),
                )
                .optional()
                .db(path)?;
            if taken.is_some() {
                return Err(Error::refused(
                    Refusal::ForgedActor,
                    format!("actor {actor} is already registered to another device"),
                ));
            }
        }
        let device_id = r.device_id.to_string();
        tx.execute(
            "INSERT INTO devices
                 (device_id, name, team, member, role, token_hash, enrolled_at, signing_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                device_id,
                r.device_name,
                team.id.as_str(),
                member,
                role.key(),
                r.token.as_str(),
                r.now_ms,
                r.signing_key.as_ref().map(|k| &k[..])
            ],
        )
        .db(path)?;
        for actor in &r.actors {
            tx.execute(
                "INSERT INTO device_actors (actor, device_id) VALUES (?1, ?2)",
                params![actor.to_hex_string(), device_id],
            )
            .db(path)?;
        }
        tx.execute(
            "UPDATE codes SET used_at = ?1, device_id = ?2 WHERE code_hash = ?3",
            params![r.now_ms, device_id, r.code.as_str()],
        )
        .db(path)?;
        tx.commit().db(path)?;
        Ok(Enrolled { team, member, role })
    }

    fn authenticate(&self, token: &SecretHash) -> Result<Option<DeviceRecord>> {
        let conn = self.reader();
        let tx = conn.unchecked_transaction().db(&self.path)?;
        let devices = read_devices(&tx, &self.path, Some(token))?;
        Ok(devices.into_iter().next())
    }

    fn devices(&self) -> Result<Vec<DeviceRecord>> {
        let conn = self.reader();
        let tx = conn.unchecked_transaction().db(&self.path)?;
        read_devices(&tx, &self.path, None)
    }

    fn revoke_device(&self, device: DeviceId, now_ms: i64) -> Result<DeviceRecord> {
        let path = &self.path;
        let w = self.writer();
        let id = device.to_string();
        w.conn
            .execute(
                "UPDATE devices SET revoked_at = coalesce(revoked_at, ?1) WHERE device_id = ?2",
                params![now_ms, id],
            )
            .db(path)?;
        read_devices(&w.conn, path, None)?
            .into_iter()
            .find(|d| d.id == device)
            .ok_or(Error::UnknownDevice(id))
    }

    fn set_signing_key(&self, device: DeviceId, key: &PublicKey) -> Result<()> {
        self.writer()
            .conn
            .execute(
                "UPDATE devices SET signing_key = ?1 WHERE device_id = ?2 AND signing_key IS NULL",
                params![&key[..], device.to_string()],
            )
            .db(&self.path)?;
        Ok(())
    }

    fn devices_of_actors(&self, actors: &[ActorId]) -> Result<Vec<(ActorId, DeviceRecord)>> {
        let conn = self.reader();
        let tx = conn.unchecked_transaction().db(&self.path)?;
        let devices = read_devices(&tx, &self.path, None)?;
        Ok(actors
            .iter()
            .filter_map(|actor| {
                let device = devices.iter().find(|d| d.actors.contains(actor))?;
                Some((actor.clone(), device.clone()))
            })
            .collect())
    }

    fn purge(&self, max_bytes: usize) -> Result<Vec<Purged>> {
        let path = &self.path;
        let mut guard = self.writer();
        let Writer { conn, docs: cache } = &mut *guard;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db(path)?;
        let max = i64::try_from(max_bytes).unwrap_or(i64::MAX);
        let doc_ids: Vec<String> = tx
            .prepare(
                "SELECT DISTINCT doc_id FROM changes
                 WHERE device_id IS NOT NULL AND length(bytes) > ?1",
            )
            .db(path)?
            .query_map([max], |r| r.get(0))
            .db(path)?
            .collect::<Result<_, _>>()
            .db(path)?;
        let mut purged = Vec::new();
        for id in doc_ids {
            let Some(doc_id) = DocId::parse(&id) else {
                continue;
            };
            let old = cache.take(&tx, path, &id, &self.actor)?;
            let (kept, removed) = purge_log(&tx, path, &id, max_bytes)?;
            let mut doc = Automerge::new();
            let count = i64::try_from(kept.len()).unwrap_or(i64::MAX);
            let last_seq = kept.last().map_or(0, |(seq, _)| *seq);
            doc.apply_changes(kept.into_iter().map(|(_, c)| c))
                .map_err(|source| Error::Document {
                    doc_id: id.clone(),
                    source: Box::new(source),
                })?;
            for gone in &removed {
                tx.execute("DELETE FROM changes WHERE seq = ?1", [gone.seq as i64])
                    .db(path)?;
            }
            tx.execute(
                "INSERT OR REPLACE INTO doc_snapshots (doc_id, upto_seq, bytes) VALUES (?1, ?2, ?3)",
                params![id, last_seq, doc.save()],
            )
            .db(path)?;
            tx.execute(
                "UPDATE documents SET heads = ?2, last_seq = ?3, change_count = ?4,
                     since_snapshot = 0, purges = purges + 1
                 WHERE doc_id = ?1",
                params![
                    id,
                    fieldlog_core::encode_heads(&doc.get_heads()),
                    last_seq,
                    count
                ],
            )
            .db(path)?;
            let records: std::collections::BTreeSet<String> =
                fieldlog_core::ledger::record_keys(&old.doc)
                    .into_iter()
                    .chain(fieldlog_core::ledger::record_keys(&doc))
                    .collect();
            for record in records {
                fieldlog_core::projection::project_record(&tx, path, &doc, &doc_id, &record)?;
            }
            purged.extend(removed);
        }
        tx.commit().db(path)?;
        Ok(purged)
    }

    fn apply(&self, device: &DeviceRecord, docs: Vec<IncomingDoc>) -> Result<Applied> {
        let path = &self.path;
        let mut guard = self.writer();
        let Writer { conn, docs: cache } = &mut *guard;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db(path)?;
        let mut applied = Applied::default();
        // Documents leave the cache while they change and return after the commit; on any
        // error they (and the transaction) are dropped.
        let mut changed = Vec::new();
        for incoming in docs {
            let id = incoming.doc_id.to_string();
            let mut cached = cache.take(&tx, path, &id, &self.actor)?;
            let before = cached.doc.get_heads();
            let new = admit(
                &mut cached.doc,
                &incoming.doc_id,
                device,
                &incoming.authors,
                incoming.changes,
            )?;
            self.store_changes(
                &tx,
                &incoming.doc_id,
                Provenance {
                    device: Some(device.id),
                    signatures: &incoming.signatures,
                },
                &new,
                &mut cached,
                &before,
            )?;
            applied.accepted += new.len();
            applied
                .heads
                .push((incoming.doc_id, cached.doc.get_heads()));
            changed.push((id, cached));
        }
        tx.commit().db(path)?;
        for (id, cached) in changed {
            cache.put(id, cached);
        }
        Ok(applied)
    }

    fn changes_after(&self, query: &ChangesQuery) -> Result<ChangesPage> {
        let path = &self.path;
        let conn = self.reader();
        // One read transaction: the page and the highest seq come from the same snapshot.
        let tx = conn.unchecked_transaction().db(path)?;
        let last_seq: i64 = tx
            .query_row("SELECT coalesce(max(seq), 0) FROM changes", [], |r| {
                r.get(0)
            })
            .db(path)?;
        let after = i64::try_from(query.after).unwrap_or(i64::MAX);
        let keys = serde_json::Value::from(query.scope_keys.clone()).to_string();
        let limit = i64::try_from(query.max_changes.saturating_add(1)).unwrap_or(i64::MAX);
        let max_change = i64::try_from(MAX_PASSED_CHANGE_BYTES).unwrap_or(i64::MAX);
        // A change no device would take is passed over, never sent (`purge` removes it).
        let mut stmt = tx
            .prepare_cached(
                "SELECT seq, doc_id, hash, bytes, signature FROM changes
                 WHERE seq > ?1
                   AND scope_key IN (SELECT value FROM json_each(?2))
                   AND device_id IS NOT ?3
                   AND length(bytes) <= ?5
                 ORDER BY seq
                 LIMIT ?4",
            )
            .db(path)?;
        let rows = stmt
            .query_map(
                params![
                    after,
                    keys,
                    query.exclude_device.to_string(),
                    limit,
                    max_change
                ],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                        r.get::<_, Option<Vec<u8>>>(4)?,
                    ))
                },
            )
            .db(path)?;
        let mut changes = Vec::new();
        let mut bytes = 0usize;
        let mut more = false;
        let max_bytes = query.max_bytes.min(MAX_PASSED_CHANGE_BYTES);
        for row in rows {
            let (seq, doc_id, hash, data, signature) = row.db(path)?;
            let full = changes.len() >= query.max_changes
                || (!changes.is_empty() && bytes + data.len() > max_bytes);
            if full {
                more = true;
                break;
            }
            bytes += data.len();
            let Ok(hash) = <[u8; 32]>::try_from(hash) else {
                continue;
            };
            changes.push(StoredChange {
                seq: u64::try_from(seq).unwrap_or(0),
                doc_id,
                hash: ChangeHash(hash),
                bytes: data,
                signature,
            });
        }
        let cursor = if more {
            changes.last().map_or(query.after, |c| c.seq)
        } else {
            u64::try_from(last_seq).unwrap_or(0)
        };
        Ok(ChangesPage {
            changes,
            cursor,
            more,
        })
    }

    fn heads(&self, docs: &[DocId]) -> Result<Vec<(DocId, Vec<ChangeHash>)>> {
        let path = &self.path;
        let conn = self.reader();
        let tx = conn.unchecked_transaction().db(path)?;
        let mut stmt = tx
            .prepare_cached("SELECT heads FROM documents WHERE doc_id = ?1")
            .db(path)?;
        docs.iter()
            .map(|doc| {
                let heads: Option<Vec<u8>> = stmt
                    .query_row([doc.to_string()], |r| r.get(0))
                    .optional()
                    .db(path)?;
                Ok((
                    doc.clone(),
                    heads
                        .map(|h| fieldlog_core::decode_heads(&h))
                        .unwrap_or_default(),
                ))
            })
            .collect()
    }

    fn whole_documents(
        &self,
        scope_keys: &[String],
        after: Option<&str>,
        max_bytes: usize,
    ) -> Result<Option<WholeDocuments>> {
        let path = &self.path;
        let conn = self.reader();
        // One read transaction: the documents and the newest seq come from one snapshot.
        let tx = conn.unchecked_transaction().db(path)?;
        let keys = serde_json::Value::from(scope_keys.to_vec()).to_string();
        let oversized: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM changes
                 WHERE scope_key IN (SELECT value FROM json_each(?1)) AND length(bytes) > ?2)",
                params![
                    keys,
                    i64::try_from(MAX_PASSED_CHANGE_BYTES).unwrap_or(i64::MAX)
                ],
                |r| r.get(0),
            )
            .db(path)?;
        if oversized {
            return Ok(None);
        }
        let last_seq: i64 = tx
            .query_row("SELECT coalesce(max(seq), 0) FROM changes", [], |r| {
                r.get(0)
            })
            .db(path)?;
        let ids: Vec<String> = tx
            .prepare_cached(
                "SELECT doc_id FROM documents
                 WHERE scope_key IN (SELECT value FROM json_each(?1)) AND doc_id > ?2
                 ORDER BY doc_id",
            )
            .db(path)?
            .query_map(params![keys, after.unwrap_or("")], |r| r.get(0))
            .db(path)?
            .collect::<rusqlite::Result<_>>()
            .db(path)?;
        let mut whole = WholeDocuments {
            last_seq: u64::try_from(last_seq).unwrap_or(0),
            ..Default::default()
        };
        let mut bytes = 0usize;
        for id in &ids {
            if !whole.documents.is_empty() && bytes >= max_bytes {
                whole.more = true;
                break;
            }
            let Some(doc_id) = DocId::parse(id) else {
                continue;
            };
            let cached = load(&tx, path, id)?;
            let saved = cached.doc.save();
            bytes += saved.len();
            whole
                .documents
                .push((doc_id, cached.doc.get_heads(), saved));
        }
        Ok(Some(whole))
    }

    fn import_registry(&self, rows: RegistryRows, now_ms: i64) -> Result<ImportSummary> {
        let path = &self.path;
        let mut guard = self.writer();
        let Writer { conn, docs: cache } = &mut *guard;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db(path)?;
        let mut summary = ImportSummary::default();
        let mut changed = Vec::new();
        for (district, rows) in rows.0 {
            let doc_id = DocId::registry(&district);
            let id = doc_id.to_string();
            let mut cached = cache.take(&tx, path, &id, &self.actor)?;
            let before = cached.doc.get_heads();
            registry::import_into(&mut cached.doc, rows, BUREAU_AUTHOR, now_ms, &mut summary)
                .map_err(|source| Error::Document {
                    doc_id: id.clone(),
                    source: Box::new(source),
                })?;
            let new = cached.doc.get_changes(&before);
            let from = Provenance {
                device: None,
                signatures: &[],
            };
            self.store_changes(&tx, &doc_id, from, &new, &mut cached, &before)?;
            changed.push((id, cached));
        }
        tx.commit().db(path)?;
        for (id, cached) in changed {
            cache.put(id, cached);
        }
        Ok(summary)
    }
}

/// Who sent changes: the device (none for the bureau's own) and the signatures that came
/// with them (an author's, kept with its change).
#[derive(Debug, Clone, Copy)]
struct Provenance<'a> {
    device: Option<DeviceId>,
    signatures: &'a [ChangeSignature],
}

/// The changes a document keeps (with their `seq`, in order), and what purge removed.
type LogSplit = (Vec<(i64, Change)>, Vec<Purged>);

/// Splits a document's log into the changes to keep (with their `seq`, in order) and those
/// `purge` removes: sent by a device and larger than `max_bytes`, or building on one removed.
fn purge_log(conn: &Connection, path: &Path, doc_id: &str, max_bytes: usize) -> Result<LogSplit> {
    let mut stmt = conn
        .prepare("SELECT seq, hash, device_id, bytes FROM changes WHERE doc_id = ?1 ORDER BY seq")
        .db(path)?;
    let rows = stmt
        .query_map([doc_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })
        .db(path)?;
    let mut removed_hashes: HashSet<Vec<u8>> = HashSet::new();
    let (mut kept, mut removed) = (Vec::new(), Vec::new());
    for row in rows {
        let (seq, hash, device_id, bytes) = row.db(path)?;
        let size = bytes.len();
        let reason = if device_id.is_some() && size > max_bytes {
            Some(PurgeReason::TooLarge)
        } else {
            let change =
                Change::from_bytes(bytes).map_err(|source| Error::StoredChange { seq, source })?;
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
                seq: u64::try_from(seq).unwrap_or(0),
                doc_id: doc_id.to_string(),
                hash: hex::encode(&hash),
                device_id,
                bytes: size,
                reason,
            });
            removed_hashes.insert(hash);
        }
    }
    Ok((kept, removed))
}

// ---- documents in memory ----

#[derive(Debug)]
struct CachedDoc {
    doc: Automerge,
    /// The highest `seq` of this document that the copy holds.
    last_seq: i64,
    /// How many purges the document had when the copy was loaded.
    purges: i64,
    used: u64,
}

#[derive(Debug)]
struct DocCache {
    docs: HashMap<String, CachedDoc>,
    capacity: usize,
    clock: u64,
}

impl DocCache {
    fn new(capacity: usize) -> DocCache {
        DocCache {
            docs: HashMap::new(),
            capacity,
            clock: 0,
        }
    }

    /// Takes the document out of the cache, brought up to date with the file (loading it
    /// from its snapshot and the log if it was not cached).
    fn take(
        &mut self,
        conn: &Connection,
        path: &Path,
        doc_id: &str,
        actor: &ActorId,
    ) -> Result<CachedDoc> {
        let (last_seq, purges) = doc_version(conn, path, doc_id)?;
        let mut cached = match self.docs.remove(doc_id) {
            Some(cached) if cached.last_seq <= last_seq && cached.purges == purges => cached,
            _ => load(conn, path, doc_id)?,
        };
        if cached.last_seq < last_seq {
            cached.last_seq = replay(conn, path, doc_id, &mut cached.doc, cached.last_seq)?;
        }
        cached.doc.set_actor(actor.clone());
        Ok(cached)
    }

    fn put(&mut self, doc_id: String, mut cached: CachedDoc) {
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

/// A document's last `seq` and purge count (zeros for a document not held yet).
fn doc_version(conn: &Connection, path: &Path, doc_id: &str) -> Result<(i64, i64)> {
    Ok(conn
        .query_row(
            "SELECT last_seq, purges FROM documents WHERE doc_id = ?1",
            [doc_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .db(path)?
        .unwrap_or((0, 0)))
}

/// Loads a document from its snapshot and the changes logged after it.
fn load(conn: &Connection, path: &Path, doc_id: &str) -> Result<CachedDoc> {
    let snapshot: Option<(i64, Vec<u8>)> = conn
        .query_row(
            "SELECT upto_seq, bytes FROM doc_snapshots WHERE doc_id = ?1",
            [doc_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .db(path)?;
    let (mut doc, from) = match snapshot {
        Some((upto, bytes)) => (
            Automerge::load(&bytes).map_err(|source| Error::Document {
                doc_id: doc_id.to_string(),
                source: Box::new(source),
            })?,
            upto,
        ),
        None => (Automerge::new(), 0),
    };
    let last_seq = replay(conn, path, doc_id, &mut doc, from)?;
    let (_, purges) = doc_version(conn, path, doc_id)?;
    Ok(CachedDoc {
        doc,
        last_seq,
        purges,
        used: 0,
    })
}

/// Applies the document's logged changes after `from`; returns the last `seq` applied.
fn replay(
    conn: &Connection,
    path: &Path,
    doc_id: &str,
    doc: &mut Automerge,
    from: i64,
) -> Result<i64> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, bytes FROM changes WHERE doc_id = ?1 AND seq > ?2 ORDER BY seq",
        )
        .db(path)?;
    let rows = stmt
        .query_map(params![doc_id, from], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .db(path)?;
    let mut last = from;
    let mut changes = Vec::new();
    for row in rows {
        let (seq, bytes) = row.db(path)?;
        changes
            .push(Change::from_bytes(bytes).map_err(|source| Error::StoredChange { seq, source })?);
        last = seq;
    }
    doc.apply_changes(changes)
        .map_err(|source| Error::Document {
            doc_id: doc_id.to_string(),
            source: Box::new(source),
        })?;
    Ok(last)
}

// ---- rows ----

fn read_teams(conn: &Connection, path: &Path) -> Result<Vec<Team>> {
    let mut stmt = conn
        .prepare_cached("SELECT team, kind, districts FROM teams ORDER BY team")
        .db(path)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .db(path)?;
    let mut teams = Vec::new();
    for row in rows {
        let (id, kind, districts) = row.db(path)?;
        if let Some(team) = team_from_row(&id, &kind, &districts) {
            teams.push(team);
        } else {
            tracing::warn!(team = id, "skipping an unreadable team row");
        }
    }
    Ok(teams)
}

fn read_team(conn: &Connection, path: &Path, team: &TeamId) -> Result<Option<Team>> {
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT kind, districts FROM teams WHERE team = ?1",
            [team.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .db(path)?;
    Ok(row.and_then(|(kind, districts)| team_from_row(team.as_str(), &kind, &districts)))
}

fn team_from_row(id: &str, kind: &str, districts: &str) -> Option<Team> {
    let districts: Vec<String> = serde_json::from_str(districts).ok()?;
    Some(Team {
        id: TeamId::parse(id).ok()?,
        kind: TeamType::parse(kind)?,
        districts: districts
            .iter()
            .map(|d| District::parse(d).ok())
            .collect::<Option<_>>()?,
    })
}

fn districts_json(districts: &[District]) -> String {
    serde_json::Value::from(districts.iter().map(|d| d.as_str()).collect::<Vec<_>>()).to_string()
}

/// Devices with their actors: the one holding `token`, or all of them.
fn read_devices(
    conn: &Connection,
    path: &Path,
    token: Option<&SecretHash>,
) -> Result<Vec<DeviceRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT device_id, name, team, member, role, enrolled_at, revoked_at, signing_key
             FROM devices
             WHERE ?1 IS NULL OR token_hash = ?1
             ORDER BY enrolled_at, device_id",
        )
        .db(path)?;
    type Row = (
        String,
        String,
        String,
        String,
        String,
        i64,
        Option<i64>,
        Option<Vec<u8>>,
    );
    let rows = stmt
        .query_map([token.map(SecretHash::as_str)], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })
        .db(path)?
        .collect::<Result<Vec<Row>, _>>()
        .db(path)?;
    let mut actors_of = conn
        .prepare_cached("SELECT actor FROM device_actors WHERE device_id = ?1 ORDER BY actor")
        .db(path)?;
    let mut devices = Vec::new();
    for (id, name, team, member, role, enrolled_at, revoked_at, signing_key) in rows {
        let actors = actors_of
            .query_map([&id], |r| r.get::<_, String>(0))
            .db(path)?
            .collect::<Result<Vec<_>, _>>()
            .db(path)?
            .iter()
            .filter_map(|hex| ActorId::try_from(hex.as_str()).ok())
            .collect();
        let (Ok(device_id), Ok(team), Ok(role)) = (
            id.parse::<DeviceId>(),
            TeamId::parse(&team),
            Role::parse(&role),
        ) else {
            tracing::warn!(device = id, "skipping an unreadable device row");
            continue;
        };
        devices.push(DeviceRecord {
            id: device_id,
            name,
            team,
            member,
            role,
            actors,
            signing_key: signing_key.and_then(|k| k.try_into().ok()),
            enrolled_at,
            revoked_at,
        });
    }
    Ok(devices)
}

// ---- the file ----

/// The bureau's actor, created on first open and registered so no device can claim it.
fn bureau_actor(conn: &Connection, path: &Path, now_ms: i64) -> Result<ActorId> {
    let existing: Option<String> = conn
        .query_row("SELECT actor FROM bureau WHERE singleton = 1", [], |r| {
            r.get(0)
        })
        .optional()
        .db(path)?;
    if let Some(actor) = existing.and_then(|hex| ActorId::try_from(hex.as_str()).ok()) {
        return Ok(actor);
    }
    let actor = ActorId::random();
    let hex = actor.to_hex_string();
    conn.execute(
        "INSERT OR REPLACE INTO bureau (singleton, actor, created_at) VALUES (1, ?1, ?2)",
        params![hex, now_ms],
    )
    .db(path)?;
    conn.execute(
        "INSERT OR IGNORE INTO device_actors (actor, device_id) VALUES (?1, NULL)",
        [&hex],
    )
    .db(path)?;
    Ok(actor)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins every shipped migration. If this fails you edited an applied migration:
    /// revert it and append a new one instead.
    #[test]
    fn migrations_are_append_only() {
        let pinned = [
            "8ed839b87f7cdf897f957600e3e1bd1afd6c67fe3962e1bcc615a123688422d6",
            "3bd9f2669e02e7344f21963066c0d369b26384241c01ce9693c31bbc9c53ce0e",
            "2a22be86990a93b7b70420506d7c24174f751a03f4aa9b7cc4e55a5a1bcdc284",
            "c40c780889ea6046cc54522d5b95b7a7e6cd27d2a4d9e1842588ebc81afa815f",
            "3d94ab6d3d149c9e3550c91ed5e79f330d23d8b9a4a57996335a3ca701d98032",
            "b16aef119c2875f31d5485075ab39f063dacb365cc1f654e4573e95b16e88a76",
            "78cc36357a55bc0431ff140e1271b9302b965107c50a025a086b36fac2e30a45",
        ];
        let actual: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| fieldlog_core::db::migration_hash(m))
            .collect();
        assert_eq!(
            actual.len(),
            pinned.len(),
            "pin the new migration's hash here"
        );
        for (version, (actual, pinned)) in actual.iter().zip(pinned).enumerate() {
            assert_eq!(
                actual, pinned,
                "migration {version} changed after it shipped"
            );
        }
    }

    #[test]
    fn an_edited_applied_migration_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStorage::open(dir.path(), SqliteOptions::default(), 0).unwrap());
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute(
            "UPDATE schema_migrations SET sha256 = 'edited' WHERE version = 0",
            [],
        )
        .unwrap();
        drop(conn);
        match SqliteStorage::open(dir.path(), SqliteOptions::default(), 0) {
            Err(Error::Store(fieldlog_core::Error::MigrationChanged { version: 0, .. })) => {}
            other => panic!("expected MigrationChanged, got {other:?}"),
        }
    }

    #[test]
    fn the_file_uses_wal_and_full_sync_and_keeps_its_actor() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(dir.path(), SqliteOptions::default(), 0).unwrap();
        let actor = storage.bureau_actor().clone();
        let conn = storage.reader();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous=FULL");
        drop(conn);
        drop(storage);
        let again = SqliteStorage::open(dir.path(), SqliteOptions::default(), 1).unwrap();
        assert_eq!(again.bureau_actor(), &actor);
    }
}
