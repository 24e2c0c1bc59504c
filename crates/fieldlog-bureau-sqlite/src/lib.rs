//! [`SqliteStorage`]: the whole bureau in one SQLite file, `bureau.sqlite3` (WAL,
//! `synchronous=FULL`), the embedded default.
//!
//! - `changes` is the log: every accepted change with its sequence number (`seq`), its
//!   document, the document's scope key, the sending device (`NULL` for the bureau) and its
//!   bytes. Sync answers are ranges of it.
//! - `documents` keeps each document's heads, so heads never need the document loaded;
//!   `doc_snapshots` keeps a saved copy, so loading a document replays only the changes
//!   after it.
//! - The bureau's projection (core's query tables, and [`PROGRESS_TABLES`]) is not here:
//!   it has a file of its own beside this one (earlier versions kept it here; an appended
//!   migration drops those tables).
//! - One connection writes (behind a mutex, in `BEGIN IMMEDIATE` transactions, which
//!   exclude writers in other processes too) and one reads. With WAL, a reader sees a
//!   snapshot in which the visible `seq`s form a prefix, which is what cursors rely on.

use automerge::{ActorId, ChangeHash};
use fieldlog_bureau_storage::{
    Append, Appended, ChangeRow, ChangedSince, ChangesPage, ChangesQuery, DeviceRecord, DocVersion,
    DocWriter, DocumentsInScope, Enrolled, LoggedChange, NewCode, Redemption, Result, Rewrite,
    SecretHash, Storage, StorageError as Error, StoredDoc, Team, device_from_row, page,
};
use fieldlog_domain::sync::{PublicKey, Refusal};
use fieldlog_domain::{DeviceId, Role, TeamId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

pub const DB_FILE: &str = "bureau.sqlite3";

/// Applied in order, once each. Never edit one that has shipped: append a new one. The
/// second is core's query tables, so the bureau answers the same queries as a device.
/// `tests::migrations_are_append_only` pins the hash of every entry.
pub const MIGRATIONS: &[&str] = &[
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
    // The projection's members become a table like a device's, written before each read
    // (`crate::projection`), so both backends read them the same way.
    "DROP VIEW team_members;",
    fieldlog_core::course::MEMBERS_TABLE,
    PROGRESS_TABLES,
    // The projection so far was written in the same transactions as the log: it is
    // current up to the log's end.
    r#"
UPDATE projected SET seq = (SELECT coalesce(max(seq), 0) FROM changes),
                     purges = (SELECT coalesce(sum(purges), 0) FROM documents);
INSERT INTO projected_docs (doc_id, heads) SELECT doc_id, heads FROM documents;
"#,
    // The projection moved to a file of its own (the bureau's `projection.sqlite3`, on
    // every backend), which rebuilds itself from the log; its tables here go.
    r#"
DROP TABLE IF EXISTS conflicts;
DROP TABLE IF EXISTS courses;
DROP TABLE IF EXISTS decisions;
DROP TABLE IF EXISTS pairings;
DROP TABLE IF EXISTS projected;
DROP TABLE IF EXISTS projected_docs;
DROP TABLE IF EXISTS roster;
DROP TABLE IF EXISTS schools;
DROP TABLE IF EXISTS targets;
DROP TABLE IF EXISTS team_members;
DROP TABLE IF EXISTS visit_photos;
DROP TABLE IF EXISTS visits;
"#,
];

/// What the bureau's projection has caught up with, in its own file. Never edit: append.
pub const PROGRESS_TABLES: &str = r#"
CREATE TABLE projected (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    seq INTEGER NOT NULL,     -- the log's last sequence number projected
    purges INTEGER NOT NULL   -- the purge total when it was
);
INSERT INTO projected (singleton, seq, purges) VALUES (1, 0, 0);
CREATE TABLE projected_docs (
    doc_id TEXT PRIMARY KEY,
    heads BLOB NOT NULL       -- the document's heads as projected, 32-byte hashes
) WITHOUT ROWID;
"#;

/// Adds the database file to a SQLite error.
pub trait DbContext<T> {
    fn db(self, path: &Path) -> Result<T>;
}

impl<T> DbContext<T> for std::result::Result<T, rusqlite::Error> {
    fn db(self, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Database {
            backend: "SQLite",
            target: path.display().to_string(),
            source: Box::new(source),
        })
    }
}

#[derive(Debug)]
pub struct SqliteStorage {
    path: PathBuf,
    actor: ActorId,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

impl SqliteStorage {
    /// Opens (creating if needed) `bureau.sqlite3` in `dir`, and the bureau's actor the
    /// first time.
    pub fn open(dir: &Path, now_ms: i64) -> Result<SqliteStorage> {
        let path = dir.join(DB_FILE);
        let conn = fieldlog_core::db::open_with(&path, MIGRATIONS)?;
        let actor = bureau_actor(&conn, &path, now_ms)?;
        let reader = fieldlog_core::db::open_with(&path, MIGRATIONS)?;
        Ok(SqliteStorage {
            writer: Mutex::new(conn),
            reader: Mutex::new(reader),
            path,
            actor,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        // Every write is one transaction, rolled back when it fails: a panic elsewhere
        // cannot have left the connection mid-write.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `read` in one read transaction (one snapshot).
    fn read<T>(&self, read: impl FnOnce(&Connection, &Path) -> Result<T>) -> Result<T> {
        let conn = self.reader();
        let tx = conn.unchecked_transaction().db(&self.path)?;
        read(&tx, &self.path)
    }
}

impl Storage for SqliteStorage {
    fn describe(&self) -> String {
        format!("SQLite {}", self.path.display())
    }

    fn bureau_actor(&self) -> &ActorId {
        &self.actor
    }

    fn add_team(&self, team: &Team, now_ms: i64) -> Result<()> {
        let inserted = self
            .writer()
            .execute(
                "INSERT INTO teams (team, kind, districts, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (team) DO NOTHING",
                params![
                    team.id.as_str(),
                    team.kind.key(),
                    team.districts_json(),
                    now_ms
                ],
            )
            .db(&self.path)?;
        if inserted == 0 {
            return Err(Error::TeamExists(team.id.clone()));
        }
        Ok(())
    }

    fn teams(&self) -> Result<Vec<Team>> {
        self.read(read_teams)
    }

    fn team(&self, id: &TeamId) -> Result<Option<Team>> {
        self.read(|conn, path| read_team(conn, path, id))
    }

    fn add_code(&self, code: &NewCode) -> Result<()> {
        let path = &self.path;
        let mut conn = self.writer();
        let tx = conn
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
        let mut conn = self.writer();
        let tx = conn
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
        self.read(|conn, path| Ok(read_devices(conn, path, Some(token))?.into_iter().next()))
    }

    fn devices(&self) -> Result<Vec<DeviceRecord>> {
        self.read(|conn, path| read_devices(conn, path, None))
    }

    fn revoke_device(&self, device: DeviceId, now_ms: i64) -> Result<DeviceRecord> {
        let path = &self.path;
        let conn = self.writer();
        let id = device.to_string();
        conn.execute(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, ?1) WHERE device_id = ?2",
            params![now_ms, id],
        )
        .db(path)?;
        read_devices(&conn, path, None)?
            .into_iter()
            .find(|d| d.id == device)
            .ok_or(Error::UnknownDevice(id))
    }

    fn set_signing_key(&self, device: DeviceId, key: &PublicKey) -> Result<()> {
        self.writer()
            .execute(
                "UPDATE devices SET signing_key = ?1 WHERE device_id = ?2 AND signing_key IS NULL",
                params![&key[..], device.to_string()],
            )
            .db(&self.path)?;
        Ok(())
    }

    fn changes_after(&self, query: &ChangesQuery) -> Result<ChangesPage> {
        self.read(|conn, path| {
            let last_seq = last_seq(conn, path)?;
            let keys = serde_json::Value::from(query.scope_keys.clone()).to_string();
            let limit = i64::try_from(query.max_changes.saturating_add(1)).unwrap_or(i64::MAX);
            let mut stmt = conn
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
                        sql_int(query.after),
                        keys,
                        query.exclude_device.to_string(),
                        limit,
                        sql_int(query.max_change_bytes)
                    ],
                    |r| {
                        Ok(ChangeRow {
                            seq: r.get(0)?,
                            doc_id: r.get(1)?,
                            hash: r.get(2)?,
                            bytes: r.get(3)?,
                            signature: r.get(4)?,
                        })
                    },
                )
                .db(path)?;
            page(rows.map(|r| r.db(path)), query, last_seq)
        })
    }

    fn heads(&self, doc_ids: &[String]) -> Result<Vec<Vec<ChangeHash>>> {
        self.read(|conn, path| {
            let mut stmt = conn
                .prepare_cached("SELECT heads FROM documents WHERE doc_id = ?1")
                .db(path)?;
            doc_ids
                .iter()
                .map(|id| {
                    let heads: Option<Vec<u8>> =
                        stmt.query_row([id], |r| r.get(0)).optional().db(path)?;
                    Ok(heads
                        .map(|h| fieldlog_core::decode_heads(&h))
                        .unwrap_or_default())
                })
                .collect()
        })
    }

    fn documents_in_scope(
        &self,
        scope_keys: &[String],
        after: Option<&str>,
        max_change_bytes: usize,
    ) -> Result<Option<DocumentsInScope>> {
        self.read(|conn, path| {
            let keys = serde_json::Value::from(scope_keys.to_vec()).to_string();
            let oversized: bool = conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM changes
                     WHERE scope_key IN (SELECT value FROM json_each(?1)) AND length(bytes) > ?2)",
                    params![keys, sql_int(max_change_bytes)],
                    |r| r.get(0),
                )
                .db(path)?;
            if oversized {
                return Ok(None);
            }
            let doc_ids = conn
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
            Ok(Some(DocumentsInScope {
                last_seq: last_seq(conn, path)?,
                doc_ids,
            }))
        })
    }

    fn version(&self, doc_id: &str) -> Result<DocVersion> {
        self.read(|conn, path| version(conn, path, doc_id))
    }

    fn document(&self, doc_id: &str, after: Option<u64>) -> Result<StoredDoc> {
        self.read(|conn, path| document(conn, path, doc_id, after))
    }

    fn changed_since(&self, seq: u64) -> Result<ChangedSince> {
        self.read(|conn, path| {
            let purges: i64 = conn
                .query_row("SELECT coalesce(sum(purges), 0) FROM documents", [], |r| {
                    r.get(0)
                })
                .db(path)?;
            let doc_ids = conn
                .prepare_cached("SELECT doc_id FROM documents WHERE last_seq > ?1 ORDER BY doc_id")
                .db(path)?
                .query_map([sql_int(seq)], |r| r.get(0))
                .db(path)?
                .collect::<rusqlite::Result<_>>()
                .db(path)?;
            Ok(ChangedSince {
                last_seq: last_seq(conn, path)?,
                purges: u64::try_from(purges).unwrap_or(0),
                doc_ids,
            })
        })
    }

    fn begin(&self) -> Result<Box<dyn DocWriter + '_>> {
        let conn = self.writer();
        conn.execute_batch("BEGIN IMMEDIATE").db(&self.path)?;
        Ok(Box::new(Writer {
            conn,
            path: &self.path,
            open: true,
        }))
    }
}

/// A `BEGIN IMMEDIATE` transaction on the writer connection; rolled back on drop unless
/// committed.
struct Writer<'a> {
    conn: MutexGuard<'a, Connection>,
    path: &'a Path,
    open: bool,
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        if self.open
            && let Err(error) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::error!(%error, "rolling back a failed write");
        }
    }
}

impl DocWriter for Writer<'_> {
    fn version(&mut self, doc_id: &str) -> Result<DocVersion> {
        version(&self.conn, self.path, doc_id)
    }

    fn document(&mut self, doc_id: &str, after: Option<u64>) -> Result<StoredDoc> {
        document(&self.conn, self.path, doc_id, after)
    }

    fn held(&mut self, hashes: &[ChangeHash]) -> Result<Vec<(ChangeHash, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc_id FROM changes WHERE hash = ?1")
            .db(self.path)?;
        let mut held = Vec::new();
        for hash in hashes {
            let doc: Option<String> = stmt
                .query_row([&hash.0[..]], |r| r.get(0))
                .optional()
                .db(self.path)?;
            held.extend(doc.map(|doc| (*hash, doc)));
        }
        Ok(held)
    }

    fn append(&mut self, append: &Append<'_>) -> Result<Appended> {
        let path = self.path;
        let device = append.device.map(|d| d.to_string());
        let mut insert = self
            .conn
            .prepare_cached(
                "INSERT INTO changes (doc_id, scope_key, hash, device_id, bytes, signature)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .db(path)?;
        for change in &append.changes {
            insert
                .execute(params![
                    append.doc_id,
                    append.scope_key,
                    &change.hash.0[..],
                    device,
                    change.bytes,
                    change.signature
                ])
                .db(path)?;
        }
        let last_seq = self.conn.last_insert_rowid();
        let count = i64::try_from(append.changes.len()).unwrap_or(i64::MAX);
        let since: i64 = self
            .conn
            .query_row(
                "INSERT INTO documents (doc_id, scope_key, heads, last_seq, change_count, since_snapshot)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                 ON CONFLICT (doc_id) DO UPDATE SET
                     heads = excluded.heads,
                     last_seq = excluded.last_seq,
                     change_count = change_count + excluded.change_count,
                     since_snapshot = since_snapshot + excluded.since_snapshot
                 RETURNING since_snapshot",
                params![
                    append.doc_id,
                    append.scope_key,
                    fieldlog_core::encode_heads(append.heads),
                    last_seq,
                    count
                ],
                |r| r.get(0),
            )
            .db(path)?;
        Ok(Appended {
            last_seq: u64::try_from(last_seq).unwrap_or(0),
            since_snapshot: u64::try_from(since).unwrap_or(0),
        })
    }

    fn put_snapshot(&mut self, doc_id: &str, upto_seq: u64, bytes: &[u8]) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO doc_snapshots (doc_id, upto_seq, bytes) VALUES (?1, ?2, ?3)",
                params![doc_id, sql_int(upto_seq), bytes],
            )
            .db(self.path)?;
        self.conn
            .execute(
                "UPDATE documents SET since_snapshot = 0 WHERE doc_id = ?1",
                [doc_id],
            )
            .db(self.path)?;
        Ok(())
    }

    fn oversized_documents(&mut self, max_bytes: usize) -> Result<Vec<String>> {
        self.conn
            .prepare(
                "SELECT DISTINCT doc_id FROM changes
                 WHERE device_id IS NOT NULL AND length(bytes) > ?1 ORDER BY doc_id",
            )
            .db(self.path)?
            .query_map([sql_int(max_bytes)], |r| r.get(0))
            .db(self.path)?
            .collect::<rusqlite::Result<_>>()
            .db(self.path)
    }

    fn log(&mut self, doc_id: &str) -> Result<Vec<LoggedChange>> {
        self.conn
            .prepare(
                "SELECT seq, hash, device_id, bytes FROM changes WHERE doc_id = ?1 ORDER BY seq",
            )
            .db(self.path)?
            .query_map([doc_id], |r| {
                Ok(LoggedChange {
                    seq: r.get(0)?,
                    hash: r.get(1)?,
                    device_id: r.get(2)?,
                    bytes: r.get(3)?,
                })
            })
            .db(self.path)?
            .collect::<rusqlite::Result<_>>()
            .db(self.path)
    }

    fn rewrite(&mut self, rewrite: &Rewrite<'_>) -> Result<()> {
        let path = self.path;
        for seq in rewrite.removed {
            self.conn
                .execute("DELETE FROM changes WHERE seq = ?1", [sql_int(*seq)])
                .db(path)?;
        }
        self.put_snapshot(rewrite.doc_id, rewrite.last_seq, rewrite.snapshot)?;
        self.conn
            .execute(
                "UPDATE documents SET heads = ?2, last_seq = ?3, change_count = ?4,
                     since_snapshot = 0, purges = purges + 1
                 WHERE doc_id = ?1",
                params![
                    rewrite.doc_id,
                    fieldlog_core::encode_heads(rewrite.heads),
                    sql_int(rewrite.last_seq),
                    sql_int(rewrite.change_count)
                ],
            )
            .db(path)?;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        self.conn.execute_batch("COMMIT").db(self.path)?;
        self.open = false;
        Ok(())
    }
}

/// A count or sequence number as SQLite's integer.
fn sql_int(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// The log's newest sequence number.
fn last_seq(conn: &Connection, path: &Path) -> Result<u64> {
    let seq: i64 = conn
        .query_row("SELECT coalesce(max(seq), 0) FROM changes", [], |r| {
            r.get(0)
        })
        .db(path)?;
    Ok(u64::try_from(seq).unwrap_or(0))
}

fn version(conn: &Connection, path: &Path, doc_id: &str) -> Result<DocVersion> {
    let row: Option<(u64, u64)> = conn
        .query_row(
            "SELECT last_seq, purges FROM documents WHERE doc_id = ?1",
            [doc_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .db(path)?;
    Ok(
        row.map_or(DocVersion::default(), |(last_seq, purges)| DocVersion {
            last_seq,
            purges,
        }),
    )
}

fn document(conn: &Connection, path: &Path, doc_id: &str, after: Option<u64>) -> Result<StoredDoc> {
    let mut stored = StoredDoc {
        version: version(conn, path, doc_id)?,
        ..StoredDoc::default()
    };
    let from = match after {
        Some(after) => after,
        None => {
            let snapshot: Option<(u64, Vec<u8>)> = conn
                .query_row(
                    "SELECT upto_seq, bytes FROM doc_snapshots WHERE doc_id = ?1",
                    [doc_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .db(path)?;
            let (upto, bytes) = snapshot.unzip();
            stored.snapshot = bytes;
            stored.snapshot_seq = upto.unwrap_or(0);
            stored.snapshot_seq
        }
    };
    stored.changes = conn
        .prepare_cached(
            "SELECT seq, bytes FROM changes WHERE doc_id = ?1 AND seq > ?2 ORDER BY seq",
        )
        .db(path)?
        .query_map(params![doc_id, sql_int(from)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .db(path)?
        .collect::<rusqlite::Result<_>>()
        .db(path)?;
    Ok(stored)
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
        if let Some(team) = Team::from_row(&id, &kind, &districts) {
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
    Ok(row.and_then(|(kind, districts)| Team::from_row(team.as_str(), &kind, &districts)))
}

/// Devices with their actors: the one holding `token`, or all of them.
fn read_devices(
    conn: &Connection,
    path: &Path,
    token: Option<&SecretHash>,
) -> Result<Vec<DeviceRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT device_id, name, team, member, role, enrolled_at, revoked_at, signing_key,
                    (SELECT json_group_array(actor) FROM
                        (SELECT actor FROM device_actors a WHERE a.device_id = d.device_id
                         ORDER BY actor))
             FROM devices d
             WHERE ?1 IS NULL OR token_hash = ?1
             ORDER BY enrolled_at, device_id",
        )
        .db(path)?;
    let rows = stmt
        .query_map([token.map(SecretHash::as_str)], |r| {
            let id: String = r.get(0)?;
            let team: String = r.get(2)?;
            let role: String = r.get(4)?;
            let actors: String = r.get(8)?;
            let actors: Vec<String> = serde_json::from_str(&actors).unwrap_or_default();
            Ok(device_from_row(
                &id,
                r.get(1)?,
                &team,
                r.get(3)?,
                &role,
                &actors,
                r.get(7)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .db(path)?;
    let mut devices = Vec::new();
    for row in rows {
        devices.extend(row.db(path)?);
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
            "4d5405b325a4ed74bcf0fcdf853acd4cfde120818bda605100fe476950e4eaf8",
            "87a1eea90d9db72347626eec2787c527cd53ac4df2197fdcff645d72320670c4",
            "21fd451f30623b50cb74e4fae6846eed3c356c91b5e6f1a734fa4aa8e06db8ac",
            "e811077a10c029c61ed6024ceced4710e3e99809d063c630fdae43074e73a42d",
            "ade98715de8f80481ff7d5336b66d5be296241adcf8e221ccea62d292249266a",
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
        drop(SqliteStorage::open(dir.path(), 0).unwrap());
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute(
            "UPDATE schema_migrations SET sha256 = 'edited' WHERE version = 0",
            [],
        )
        .unwrap();
        drop(conn);
        match SqliteStorage::open(dir.path(), 0) {
            Err(Error::Open(fieldlog_core::Error::MigrationChanged { version: 0, .. })) => {}
            other => panic!("expected MigrationChanged, got {other:?}"),
        }
    }

    #[test]
    fn the_file_uses_wal_and_full_sync_and_keeps_its_actor() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(dir.path(), 0).unwrap();
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
        let again = SqliteStorage::open(dir.path(), 1).unwrap();
        assert_eq!(again.bureau_actor(), &actor);
    }
}
