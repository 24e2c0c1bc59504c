//! Opening a SQLite file the Fieldlog way: WAL, `synchronous=FULL` (a returned write survives
//! a crash), and append-only migrations, each pinned by its sha256. The device store and the
//! bureau both open their files through [`open_with`].

use crate::error::{DbContext, Error, Result};
use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Applied in order, once each. Never edit one that has shipped: append a new one.
/// `tests::migrations_are_append_only` pins the hash of every entry.
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE device (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    device_id TEXT NOT NULL,
    device_name TEXT NOT NULL,
    team TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
-- Each document is a sequence of chunks: a saved snapshot and the incremental changes after it.
CREATE TABLE doc_chunks (
    doc_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (doc_id, seq)
) WITHOUT ROWID;
CREATE TABLE peers (
    peer_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    last_seen_at INTEGER NOT NULL
);
-- What each peer is known to hold, from the last bundle it sent us.
CREATE TABLE peer_heads (
    peer_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    heads BLOB NOT NULL,
    PRIMARY KEY (peer_id, doc_id)
) WITHOUT ROWID;
-- Projection: query rows derived from the documents, rewritten in the same transaction.
CREATE TABLE schools (
    id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    name TEXT NOT NULL,
    district TEXT NOT NULL,
    area TEXT NOT NULL,
    level TEXT,
    enrollment INTEGER,
    status TEXT NOT NULL,
    pinyin_initials TEXT NOT NULL,
    pinyin_full TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX schools_by_name ON schools (name);
CREATE TABLE visits (
    id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    team TEXT NOT NULL,
    school_id TEXT NOT NULL,
    date TEXT NOT NULL,
    audience INTEGER NOT NULL,
    lecture INTEGER NOT NULL,
    books INTEGER NOT NULL,
    kits INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    duplicate_of TEXT,
    created_at INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX visits_by_date ON visits (date);
CREATE INDEX visits_by_school ON visits (school_id);
CREATE TABLE conflicts (
    record_id TEXT NOT NULL,
    field TEXT NOT NULL,
    actor TEXT NOT NULL,
    author TEXT NOT NULL,
    at INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (record_id, field, actor, value)
) WITHOUT ROWID;
"#,
    r#"
-- The bureau this device is enrolled with, and how far it has synced.
CREATE TABLE bureau (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    url TEXT NOT NULL,
    token TEXT NOT NULL,
    device_id TEXT NOT NULL,
    member TEXT NOT NULL,
    role TEXT NOT NULL,
    districts TEXT NOT NULL,
    cursor INTEGER NOT NULL DEFAULT 0,
    last_sync_at INTEGER,
    enrolled_at INTEGER NOT NULL
);
-- The chunk generation of each document as of its last complete upload to the bureau.
CREATE TABLE doc_sync (
    doc_id TEXT PRIMARY KEY,
    synced_generation INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    crate::projection::PHOTO_TABLE,
    r#"
-- Photo files ingested on this device, and when the bureau confirmed holding each.
-- `photo` is the photo's id (its display copy's sha256). An original is kept, under
-- `photos/originals/`, only while the `originals` setting says so.
CREATE TABLE photo_files (
    photo TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('thumbnail', 'display', 'original')),
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    added_at INTEGER NOT NULL,
    uploaded_at INTEGER,
    PRIMARY KEY (photo, role)
) WITHOUT ROWID;
CREATE INDEX photo_files_by_sha256 ON photo_files (sha256);
-- Photos attached before this table existed were ingested on this device if its team wrote
-- the visit; files that are not here are skipped when uploading.
INSERT OR IGNORE INTO photo_files (photo, role, sha256, bytes, added_at)
SELECT json_extract(p.value, '$.display_sha256'), 'thumbnail',
       json_extract(p.value, '$.thumbnail_sha256'), json_extract(p.value, '$.thumbnail_bytes'),
       v.created_at
FROM visits v, json_each(v.record, '$.photos') p
WHERE v.team = (SELECT team FROM device)
UNION ALL
SELECT json_extract(p.value, '$.display_sha256'), 'display',
       json_extract(p.value, '$.display_sha256'), json_extract(p.value, '$.display_bytes'),
       v.created_at
FROM visits v, json_each(v.record, '$.photos') p
WHERE v.team = (SELECT team FROM device);
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"#,
    r#"
-- The device's ed25519 signing key (32 secret bytes); made on first open when missing.
ALTER TABLE device ADD COLUMN signing_key BLOB;
-- Authors' signatures of changes this device holds: its own, and those received with
-- teammates' changes, so it can carry them to the bureau.
CREATE TABLE change_signatures (
    hash BLOB PRIMARY KEY,
    signature BLOB NOT NULL
) WITHOUT ROWID;
-- Whether the bureau holds the signing key (enrolled with it, or told in an answered round).
ALTER TABLE bureau ADD COLUMN key_registered INTEGER NOT NULL DEFAULT 0;
"#,
    crate::review::TABLES,
    crate::course::TABLES,
    crate::course::MEMBERS_TABLE,
    r#"
-- What a new change to a document builds on, kept with every chunk written so that a new
-- record can be appended without loading the document (`docs::DocCache::append`):
-- its heads, its highest operation counter, this device's last sequence number in it, and
-- the chunk generation these describe.
CREATE TABLE doc_heads (
    doc_id TEXT PRIMARY KEY,
    heads BLOB NOT NULL,
    max_op INTEGER NOT NULL,
    local_seq INTEGER NOT NULL,
    generation INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    r#"
-- Where a first sync's delivery of whole documents goes on (`SyncResponse::resume`).
ALTER TABLE bureau ADD COLUMN resume TEXT;
"#,
];

/// The sha256 (hex) a migration is pinned by.
pub fn migration_hash(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Opens (creating if needed) the device store file.
pub(crate) fn open(path: &Path) -> Result<Connection> {
    open_with(path, MIGRATIONS)
}

/// Opens (creating if needed) a SQLite file with WAL and `synchronous=FULL`, and applies the
/// `migrations` it lacks. A migration whose text changed after it was applied is refused.
pub fn open_with(path: &Path, migrations: &[&str]) -> Result<Connection> {
    let mut conn = Connection::open(path).db(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .db(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;",
    )
    .db(path)?;
    migrate(&mut conn, path, migrations)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, path: &Path, migrations: &[&str]) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .db(path)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            sha256 TEXT NOT NULL
        )",
    )
    .db(path)?;
    for (version, sql) in migrations.iter().enumerate() {
        let code = migration_hash(sql);
        let stored: Option<String> = tx
            .query_row(
                "SELECT sha256 FROM schema_migrations WHERE version = ?1",
                [version],
                |row| row.get(0),
            )
            .optional()
            .db(path)?;
        match stored {
            Some(stored) if stored == code => {}
            Some(stored) => {
                return Err(Error::MigrationChanged {
                    version,
                    stored,
                    code,
                });
            }
            None => {
                tx.execute_batch(sql).db(path)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, sha256) VALUES (?1, ?2)",
                    rusqlite::params![version, code],
                )
                .db(path)?;
            }
        }
    }
    tx.commit().db(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins every shipped migration. If this fails you edited an applied migration:
    /// revert it and append a new one instead.
    #[test]
    fn migrations_are_append_only() {
        let pinned = [
            "2711eecdc00c70c3e5e448ab6b447ec3f08dd6ba40907424d6531d3529e63010",
            "78e43fa5ffc0224aa8c22622dfb30c538b0d7692c360da5a947515c08a1651c7",
            "2a22be86990a93b7b70420506d7c24174f751a03f4aa9b7cc4e55a5a1bcdc284",
            "fff207ee728138bc4371ce3ae0eb343f0cde6ecf5969bd8de21d1c8209660d94",
            "e3f618b81b5f7f5259c8a7cdef53eee03ff8aec6ee7de5fa48f4a653b62edc99",
            "3d94ab6d3d149c9e3550c91ed5e79f330d23d8b9a4a57996335a3ca701d98032",
            "b16aef119c2875f31d5485075ab39f063dacb365cc1f654e4573e95b16e88a76",
            "87a1eea90d9db72347626eec2787c527cd53ac4df2197fdcff645d72320670c4",
            "39f4faaf7d8a42e9860ef58a9d3f0362f7f512a86bdce12f1589714ca36229cb",
            "5db35893ca5b7706435ea852405a37b4bd7a12a8641f94e75eb710d70ce3c891",
        ];
        let actual: Vec<String> = MIGRATIONS.iter().map(|m| migration_hash(m)).collect();
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
    fn photos_attached_before_the_photo_tables_are_backfilled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite3");
        let old = open_with(&path, &MIGRATIONS[..2]).unwrap();
        let photo = |n: u8| {
            format!(
                r#"{{"display_sha256":"d{n}","thumbnail_sha256":"t{n}","display_bytes":100,"thumbnail_bytes":10}}"#
            )
        };
        old.execute_batch(&format!(
            "INSERT INTO device VALUES (1, 'id', '一号机', 'caravan-1', 'actor', 0);
             INSERT INTO visits VALUES ('v1', 'ledger/caravan-1/2026-05', 'caravan-1', 's', '2026-05-20',
                 0, 0, 0, 0, 0, NULL, 5, '{{\"photos\":[{}]}}');
             INSERT INTO visits VALUES ('v2', 'ledger/caravan-2/2026-05', 'caravan-2', 's', '2026-05-20',
                 0, 0, 0, 0, 0, NULL, 6, '{{\"photos\":[{}]}}');",
            photo(1),
            photo(2)
        ))
        .unwrap();
        drop(old);
        let conn = open(&path).unwrap();
        let rows = |sql: &str| -> Vec<String> {
            conn.prepare(sql)
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        assert_eq!(
            rows("SELECT sha256 || ' ' || visit_id || ' ' || bytes FROM visit_photos ORDER BY 1"),
            ["d1 v1 100", "d2 v2 100", "t1 v1 10", "t2 v2 10"]
        );
        // Only this team's visits were written here, so only their files wait to upload.
        assert_eq!(
            rows("SELECT role || ' ' || sha256 || ' ' || photo FROM photo_files ORDER BY 1"),
            ["display d1 d1", "thumbnail t1 d1"]
        );
    }

    #[test]
    fn an_edited_applied_migration_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite3");
        drop(open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE schema_migrations SET sha256 = 'edited' WHERE version = 0",
            [],
        )
        .unwrap();
        drop(conn);
        match open(&path) {
            Err(Error::MigrationChanged { version: 0, .. }) => {}
            other => panic!("expected MigrationChanged, got {other:?}"),
        }
    }

    #[test]
    fn store_uses_wal_and_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("store.sqlite3")).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous=FULL");
    }
}
