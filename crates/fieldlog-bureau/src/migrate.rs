//! `fieldlog-bureau migrate --to postgres://… [--blobs s3://…]`: copies an embedded bureau
//! (its `bureau.sqlite3`, and its `blobs/` when a bucket is named) into an empty
//! PostgreSQL database (and the bucket), then checks the copy: every document's heads
//! rebuilt from the copied log, every device with its actors and key, every photo file's
//! sha256 read back from the bucket.
//!
//! Sequence numbers are copied as they are and the counter continues after the highest
//! ever given, so devices keep syncing from their cursors: nothing is resent, nothing is
//! skipped. The bureau's Automerge actor is copied too. The embedded file is read in one
//! snapshot and left untouched; stop `serve` first, so nothing arrives after the copy.

use crate::blobstore::BlobStore;
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::{DB_FILE, PostgresStorage, SqliteStorage};
use automerge::Automerge;
use fieldlog_bureau_sqlite::DbContext;
use futures::StreamExt as _;
use postgres::types::ToSql;
use rusqlite::Connection;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::Path;

/// What was copied and checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Migrated {
    pub teams: usize,
    pub devices: usize,
    pub codes: usize,
    pub changes: usize,
    pub documents: usize,
    /// The sequence number the PostgreSQL log continues after.
    pub last_seq: u64,
    /// Photo files copied into the bucket and read back (0 when they stay in `blobs/`).
    pub blobs: usize,
    pub blob_bytes: u64,
}

/// A column's type on the PostgreSQL side.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Int4,
    Int8,
    Text,
    Bytes,
}

/// The embedded tables that hold records (not the projection), with their columns.
const TABLES: &[(&str, &[(&str, Ty)])] = &[
    (
        "bureau",
        &[
            ("singleton", Ty::Int4),
            ("actor", Ty::Text),
            ("created_at", Ty::Int8),
        ],
    ),
    (
        "teams",
        &[
            ("team", Ty::Text),
            ("kind", Ty::Text),
            ("districts", Ty::Text),
            ("created_at", Ty::Int8),
        ],
    ),
    (
        "members",
        &[
            ("team", Ty::Text),
            ("member", Ty::Text),
            ("role", Ty::Text),
            ("added_at", Ty::Int8),
        ],
    ),
    (
        "codes",
        &[
            ("code_hash", Ty::Text),
            ("team", Ty::Text),
            ("member", Ty::Text),
            ("role", Ty::Text),
            ("issued_at", Ty::Int8),
            ("expires_at", Ty::Int8),
            ("used_at", Ty::Int8),
            ("device_id", Ty::Text),
        ],
    ),
    (
        "devices",
        &[
            ("device_id", Ty::Text),
            ("name", Ty::Text),
            ("team", Ty::Text),
            ("member", Ty::Text),
            ("role", Ty::Text),
            ("token_hash", Ty::Text),
            ("enrolled_at", Ty::Int8),
            ("revoked_at", Ty::Int8),
            ("signing_key", Ty::Bytes),
        ],
    ),
    (
        "device_actors",
        &[("actor", Ty::Text), ("device_id", Ty::Text)],
    ),
    (
        "changes",
        &[
            ("seq", Ty::Int8),
            ("doc_id", Ty::Text),
            ("scope_key", Ty::Text),
            ("hash", Ty::Bytes),
            ("device_id", Ty::Text),
            ("bytes", Ty::Bytes),
            ("signature", Ty::Bytes),
        ],
    ),
    (
        "documents",
        &[
            ("doc_id", Ty::Text),
            ("scope_key", Ty::Text),
            ("heads", Ty::Bytes),
            ("last_seq", Ty::Int8),
            ("change_count", Ty::Int8),
            ("since_snapshot", Ty::Int8),
            ("purges", Ty::Int8),
        ],
    ),
    (
        "doc_snapshots",
        &[
            ("doc_id", Ty::Text),
            ("upto_seq", Ty::Int8),
            ("bytes", Ty::Bytes),
        ],
    ),
];

fn refused(detail: impl Into<String>) -> Error {
    Error::Migration {
        detail: detail.into(),
    }
}

fn pg(target: &str) -> impl FnOnce(postgres::Error) -> Error + '_ {
    move |source| Error::Database {
        backend: "PostgreSQL",
        target: target.to_string(),
        source: Box::new(source),
    }
}

/// Copies the embedded bureau in `data_dir` into the database at `url` (which must hold no
/// bureau yet) and checks it. Run it outside any async runtime (the PostgreSQL client runs
/// its own); the photo files go to `blobs` with `runtime`.
pub fn to_postgres(
    data_dir: &Path,
    url: &str,
    blobs: Option<(&dyn BlobStore, &tokio::runtime::Runtime)>,
) -> Result<Migrated> {
    let path = data_dir.join(DB_FILE);
    if !path.exists() {
        return Err(refused(format!(
            "no embedded bureau in {}: it holds no {DB_FILE}",
            data_dir.display()
        )));
    }
    // Brings an older file's schema up to date, as opening the bureau would.
    let source = SqliteStorage::open(data_dir, 0)?;
    let target = PostgresStorage::connect(url, 0)?;
    let name = crate::postgres::redacted(url);
    let mut client = url
        .parse::<postgres::Config>()
        .map_err(pg(&name))?
        .connect(postgres::NoTls)
        .map_err(pg(&name))?;
    let busy: i64 = client
        .query_one(
            "SELECT (SELECT count(*) FROM teams) + (SELECT count(*) FROM devices)
                  + (SELECT count(*) FROM changes)",
            &[],
        )
        .map_err(pg(&name))?
        .get(0);
    if busy > 0 {
        return Err(refused(format!(
            "{name} already holds a bureau (teams, devices or changes); migrate into an empty database"
        )));
    }

    let conn = Connection::open(&path).db(&path)?;
    // One snapshot of the file for the copy.
    let snapshot = conn.unchecked_transaction().db(&path)?;
    let mut migrated = Migrated::default();
    let mut tx = client.transaction().map_err(pg(&name))?;
    // The database's own first actor gives way to the bureau's.
    tx.batch_execute("DELETE FROM device_actors WHERE device_id IS NULL; DELETE FROM bureau;")
        .map_err(pg(&name))?;
    for (table, columns) in TABLES {
        let copied = copy_table(&snapshot, &path, &mut tx, &name, table, columns)?;
        match *table {
            "teams" => migrated.teams = copied,
            "devices" => migrated.devices = copied,
            "codes" => migrated.codes = copied,
            "changes" => migrated.changes = copied,
            "documents" => migrated.documents = copied,
            _ => {}
        }
    }
    // The highest number ever given (a purge may have removed the last one).
    let last_seq: i64 = snapshot
        .query_row(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0),
                        coalesce((SELECT max(seq) FROM changes), 0))",
            [],
            |r| r.get(0),
        )
        .db(&path)?;
    tx.execute(
        "UPDATE log_counter SET seq = $1 WHERE singleton = 1",
        &[&last_seq],
    )
    .map_err(pg(&name))?;
    tx.commit().map_err(pg(&name))?;
    drop(snapshot);
    migrated.last_seq = u64::try_from(last_seq).unwrap_or(0);
    drop(target);

    check(&source, &PostgresStorage::connect(url, 0)?)?;
    if let Some((store, runtime)) = blobs {
        let (count, bytes) =
            runtime.block_on(copy_blobs(&data_dir.join(crate::BLOB_DIR), store))?;
        migrated.blobs = count;
        migrated.blob_bytes = bytes;
    }
    Ok(migrated)
}

/// Copies one table row by row, each value as its PostgreSQL type.
fn copy_table(
    from: &Connection,
    path: &Path,
    into: &mut postgres::Transaction<'_>,
    target: &str,
    table: &str,
    columns: &[(&str, Ty)],
) -> Result<usize> {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let list = names.join(", ");
    let marks: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    let insert = into
        .prepare(&format!(
            "INSERT INTO {table} ({list}) VALUES ({})",
            marks.join(", ")
        ))
        .map_err(pg(target))?;
    let mut select = from
        .prepare(&format!("SELECT {list} FROM {table}"))
        .db(path)?;
    let mut rows = select.query([]).db(path)?;
    let mut copied = 0;
    while let Some(row) = rows.next().db(path)? {
        let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(columns.len());
        for (i, (_, ty)) in columns.iter().enumerate() {
            values.push(match ty {
                Ty::Int4 => Box::new(row.get::<_, Option<i32>>(i).db(path)?),
                Ty::Int8 => Box::new(row.get::<_, Option<i64>>(i).db(path)?),
                Ty::Text => Box::new(row.get::<_, Option<String>>(i).db(path)?),
                Ty::Bytes => Box::new(row.get::<_, Option<Vec<u8>>>(i).db(path)?),
            });
        }
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| &**v).collect();
        into.execute(&insert, &params).map_err(pg(target))?;
        copied += 1;
    }
    Ok(copied)
}

/// Every device as it was, and every document's heads as rebuilt from the copied log.
fn check(source: &SqliteStorage, target: &PostgresStorage) -> Result<()> {
    if source.bureau_actor() != target.bureau_actor() {
        return Err(refused("the copy has another bureau actor"));
    }
    let (before, after) = (source.devices()?, target.devices()?);
    if before != after {
        return Err(refused(format!(
            "the copy's devices differ: {} here, {} there",
            before.len(),
            after.len()
        )));
    }
    let ids = source.changed_since(0)?.doc_ids;
    let stored = source.heads(&ids)?;
    for (id, heads) in ids.iter().zip(stored) {
        let copied = target.document(id, None)?;
        let mut doc = match &copied.snapshot {
            Some(bytes) => Automerge::load(bytes).map_err(|e| refused(format!("{id}: {e}")))?,
            None => Automerge::new(),
        };
        let changes = copied
            .changes
            .into_iter()
            .map(|(seq, bytes)| {
                automerge::Change::from_bytes(bytes)
                    .map_err(|source| Error::StoredChange { seq, source })
            })
            .collect::<Result<Vec<_>>>()?;
        doc.apply_changes(changes)
            .map_err(|e| refused(format!("{id}: {e}")))?;
        let mut rebuilt = doc.get_heads();
        let mut expected = heads;
        rebuilt.sort();
        expected.sort();
        if rebuilt != expected {
            return Err(refused(format!(
                "document {id}: the copy's heads differ from the file's"
            )));
        }
    }
    // A write through the storage works on the copy (the counter lock, the tables).
    Ok(target.begin()?.commit()?)
}

/// Puts every complete photo file of `dir` into `store` and reads each back, checking its
/// sha256; returns how many files and bytes.
async fn copy_blobs(dir: &Path, store: &dyn BlobStore) -> Result<(usize, u64)> {
    let (mut count, mut total) = (0, 0);
    for file in complete_files(dir)? {
        let Some(sha256) = file
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| fieldlog_domain::sync::is_sha256_hex(s))
            .map(str::to_string)
        else {
            continue;
        };
        let length = std::fs::metadata(&file)
            .map_err(|source| Error::Io {
                path: file.clone(),
                source,
            })?
            .len();
        store
            .put_complete(&sha256, &file, length)
            .await
            .map_err(|e| refused(format!("copying {sha256}: {e}")))?;
        let Some(mut opened) = store
            .open(&sha256)
            .await
            .map_err(|e| refused(format!("reading back {sha256}: {e}")))?
        else {
            return Err(refused(format!(
                "{sha256} is not in the bucket after the copy"
            )));
        };
        let mut hasher = Sha256::new();
        while let Some(chunk) = opened.bytes.next().await {
            hasher.update(chunk.map_err(|e| refused(format!("reading back {sha256}: {e}")))?);
        }
        if hex::encode(hasher.finalize()) != sha256 {
            return Err(refused(format!("{sha256} reads back with another sha256")));
        }
        count += 1;
        total += length;
    }
    Ok((count, total))
}

/// The complete files under `dir` (`xx/<sha256>.jpg`), not uploads in progress.
fn complete_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let mut files = Vec::new();
    if !dir.exists() {
        return Ok(files);
    }
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let sub = entry.map_err(io(dir))?.path();
        let is_prefix = sub
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.len() == 2 && n.chars().all(|c| c.is_ascii_hexdigit()));
        if !sub.is_dir() || !is_prefix {
            continue;
        }
        for file in std::fs::read_dir(&sub).map_err(io(&sub))? {
            let path = file.map_err(io(&sub))?.path();
            if path.extension().is_some_and(|e| e == "jpg") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}
