//! Backups of a bureau's data directory (the SQLite storage and the photo files), taken while
//! it serves, and their restore.
//!
//! A backup directory holds:
//! - `bureau.sqlite3`: a copy made with SQLite's online backup API in one step, so it is
//!   the database as one read transaction saw it (in WAL mode that read blocks no writer);
//! - `blobs/<2 hex>/<sha256>.jpg`: every complete photo file, copied *after* the database,
//!   so each file the copied database names is there (files are only ever added), each
//!   checked against its name as it is copied; partial uploads are left out (devices
//!   resume them from the start);
//! - `manifest.json`, written last: every file's path, length and sha256. A directory
//!   without it is not a backup.
//!
//! With the photo files in an object store (`--blobs s3://…`, [`PhotoFiles::InObjectStore`])
//! only the database is copied, and the manifest names the store (`photo_store`). The
//! bureau only ever adds files there (create-only, by sha256, never replaced or removed),
//! so every file a backed-up database names stays in the bucket; copying a whole bucket
//! at each backup would cost what the object store's own durability, versioning and
//! replication already give. Keep the bucket's versioning on and no expiry rule on it.
//!
//! [`restore`] checks every file against the manifest before it touches the data directory,
//! refuses a data directory that holds anything unless told to replace it, and checks the
//! restored database with `PRAGMA quick_check`. Stop the bureau before a restore.
//!
//! Devices that synced with the bureau after the backup hold cursors past the restored
//! change log. So that no change stored after the restore hides below such a cursor, the
//! restored log numbers its next change [`SEQUENCE_GAP`] past the last one (SQLite's
//! `sqlite_sequence` for the `changes` table). What such devices *sent* after the backup is
//! not sent again by them today (they hold the bureau's heads as they were): see the
//! README's "Running a bureau".

use crate::BLOB_DIR;
use crate::DB_FILE;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// The manifest's name in a backup directory.
pub const MANIFEST: &str = "manifest.json";
/// The manifest format this bureau writes and reads.
pub const FORMAT: u32 = 1;
/// How far past its last change a restored change log numbers its next one: more changes
/// than any bureau stores between a backup and its restore.
pub const SEQUENCE_GAP: i64 = 1 << 32;

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// When the backup was taken (ms since the epoch).
    pub created_at_ms: i64,
    /// The bureau version that took it.
    pub bureau_version: String,
    /// Every file, the database first, by path relative to the backup directory (`/`).
    pub files: Vec<BackedUp>,
    /// Where the photo files are, when they were not copied (`s3://bucket/prefix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo_store: Option<String>,
}

/// What a backup does with the complete photo files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhotoFiles {
    /// They are in the data directory's `blobs/`: copied and checked.
    Copied,
    /// They are in this object store (`s3://bucket/prefix`), where they stay.
    InObjectStore(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackedUp {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

impl Manifest {
    /// Photo files and their bytes.
    pub fn blobs(&self) -> (usize, u64) {
        let blobs = self.files.iter().filter(|f| f.path != DB_FILE);
        (blobs.clone().count(), blobs.map(|f| f.bytes).sum())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no bureau in {0}: it holds no {DB_FILE}")]
    NoBureau(PathBuf),
    #[error("{0} is not empty; back up into a new or empty directory")]
    TargetNotEmpty(PathBuf),
    #[error(
        "{0} is not empty; restore into an empty data directory, or pass --force to replace what it holds (stop its bureau first)"
    )]
    DataDirNotEmpty(PathBuf),
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database {path}")]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path} is not a backup manifest")]
    Manifest {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: manifest format {found}, this bureau reads format {FORMAT}")]
    Format { path: PathBuf, found: u32 },
    #[error("the manifest lists `{0}`, which is not a path inside the backup")]
    UnsafePath(String),
    #[error("{path}: {field} is {found}, the manifest says {expected}")]
    Mismatch {
        path: PathBuf,
        field: &'static str,
        expected: String,
        found: String,
    },
    #[error("the manifest lists no {DB_FILE}")]
    NoDatabaseListed,
    #[error("photo file {path} holds bytes whose sha256 is {found}, not its name's")]
    DamagedBlob { path: PathBuf, found: String },
    #[error("the restored database {path} fails its check: {result}")]
    Check { path: PathBuf, result: String },
}

type Result<T, E = BackupError> = std::result::Result<T, E>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn db(path: &Path) -> impl FnOnce(rusqlite::Error) -> BackupError + '_ {
    move |source| BackupError::Database {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether `dir` is missing or holds nothing.
fn is_empty(dir: &Path) -> Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io(dir)(e)),
    }
}

/// Backs up the bureau in `data_dir` (which may be serving) into `to`, a new or empty
/// directory, with its photo files; `now_ms` dates the manifest.
pub fn backup(data_dir: &Path, to: &Path, now_ms: i64) -> Result<Manifest> {
    backup_with(data_dir, to, now_ms, &PhotoFiles::Copied)
}

/// [`backup`], with the photo files copied or left where they are.
pub fn backup_with(
    data_dir: &Path,
    to: &Path,
    now_ms: i64,
    photos: &PhotoFiles,
) -> Result<Manifest> {
    let source = data_dir.join(DB_FILE);
    if !source.is_file() {
        return Err(BackupError::NoBureau(data_dir.to_path_buf()));
    }
    if !is_empty(to)? {
        return Err(BackupError::TargetNotEmpty(to.to_path_buf()));
    }
    std::fs::create_dir_all(to).map_err(io(to))?;

    // The database: read-write so a WAL file can be opened whatever its state, but nothing
    // is written; one step, so one read transaction sees it all.
    let copy = to.join(DB_FILE);
    {
        let from = rusqlite::Connection::open_with_flags(
            &source,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db(&source))?;
        from.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(db(&source))?;
        let mut into = rusqlite::Connection::open(&copy).map_err(db(&copy))?;
        copy_database(&from, &mut into).map_err(db(&copy))?;
        // A single file: the copy's own journal is folded back in.
        into.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
            .map_err(db(&copy))?;
    }
    sync_file(&copy)?;
    let (bytes, sha256) = hash_file(&copy)?;
    let mut files = vec![BackedUp {
        path: DB_FILE.to_string(),
        bytes,
        sha256,
    }];

    // Then the photo files, if they are here.
    let blobs = data_dir.join(BLOB_DIR);
    let (here, photo_store) = match photos {
        PhotoFiles::Copied => (complete_blobs(&blobs)?, None),
        PhotoFiles::InObjectStore(store) => (Vec::new(), Some(store.clone())),
    };
    for (rel, path) in here {
        let target = to.join(BLOB_DIR).join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let (bytes, sha256) = copy_hashing(&path, &target)?;
        let named = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if sha256 != named {
            return Err(BackupError::DamagedBlob {
                path,
                found: sha256,
            });
        }
        files.push(BackedUp {
            path: format!("{BLOB_DIR}/{}", rel.to_string_lossy().replace('\\', "/")),
            bytes,
            sha256,
        });
    }

    let manifest = Manifest {
        format: FORMAT,
        created_at_ms: now_ms,
        bureau_version: env!("CARGO_PKG_VERSION").to_string(),
        files,
        photo_store,
    };
    let path = to.join(MANIFEST);
    let partial = to.join(format!("{MANIFEST}.partial"));
    let json = serde_json::to_vec_pretty(&manifest).map_err(|source| BackupError::Manifest {
        path: path.clone(),
        source,
    })?;
    std::fs::write(&partial, json).map_err(io(&partial))?;
    sync_file(&partial)?;
    std::fs::rename(&partial, &path).map_err(io(&path))?;
    sync_dir(to)?;
    Ok(manifest)
}

/// How often a backup step finding the source locked is tried again, and how long apart.
const BUSY_TRIES: u32 = 300;
const BUSY_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Copies every page in one step (-1), so one read transaction sees the whole database;
/// a step refused as busy or locked is tried again a while.
fn copy_database(
    from: &rusqlite::Connection,
    into: &mut rusqlite::Connection,
) -> rusqlite::Result<()> {
    use rusqlite::backup::StepResult;
    let backup = rusqlite::backup::Backup::new(from, into)?;
    let mut tries = 0;
    loop {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked if tries < BUSY_TRIES => {
                tries += 1;
                std::thread::sleep(BUSY_PAUSE);
            }
            _ => {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    Some("the database stayed locked for the backup".into()),
                ));
            }
        }
    }
}

/// Restores the backup in `from` into `data_dir`: every file is checked against the
/// manifest first; a data directory holding anything is refused unless `replace`, which
/// removes its database (with its WAL) and photo files first.
pub fn restore(from: &Path, data_dir: &Path, replace: bool) -> Result<Manifest> {
    let manifest = read_manifest(from)?;
    if !manifest.files.iter().any(|f| f.path == DB_FILE) {
        return Err(BackupError::NoDatabaseListed);
    }
    for file in &manifest.files {
        let path = inside(from, &file.path)?;
        let (bytes, sha256) = hash_file(&path)?;
        check(&path, file, bytes, &sha256)?;
    }
    if !is_empty(data_dir)? {
        if !replace {
            return Err(BackupError::DataDirNotEmpty(data_dir.to_path_buf()));
        }
        // The projection goes too: it rebuilds from the restored log.
        let files = [DB_FILE, crate::PROJECTION_FILE];
        for name in files
            .iter()
            .flat_map(|f| [f.to_string(), format!("{f}-wal"), format!("{f}-shm")])
        {
            let path = data_dir.join(name);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&path)(e)),
                _ => {}
            }
        }
        let blobs = data_dir.join(BLOB_DIR);
        match std::fs::remove_dir_all(&blobs) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&blobs)(e)),
            _ => {}
        }
    }
    std::fs::create_dir_all(data_dir.join(BLOB_DIR)).map_err(io(data_dir))?;
    // Photo files first, the database last (under a temporary name until whole), so a
    // restore cut short leaves no database naming files that are not there.
    let mut database = None;
    for file in &manifest.files {
        let source = inside(from, &file.path)?;
        let target = if file.path == DB_FILE {
            let target = data_dir.join(format!("{DB_FILE}.restoring"));
            database = Some(target.clone());
            target
        } else {
            inside(data_dir, &file.path)?
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let (bytes, sha256) = copy_hashing(&source, &target)?;
        check(&target, file, bytes, &sha256)?;
    }
    let Some(restoring) = database else {
        return Err(BackupError::NoDatabaseListed);
    };
    {
        let conn = rusqlite::Connection::open(&restoring).map_err(db(&restoring))?;
        let result: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(db(&restoring))?;
        if result != "ok" {
            return Err(BackupError::Check {
                path: restoring,
                result,
            });
        }
        conn.execute_batch(&format!(
            "INSERT INTO sqlite_sequence (name, seq)
                 SELECT 'changes', coalesce((SELECT max(seq) FROM changes), 0)
                 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'changes');
             UPDATE sqlite_sequence SET seq = seq + {SEQUENCE_GAP} WHERE name = 'changes';"
        ))
        .map_err(db(&restoring))?;
    }
    let path = data_dir.join(DB_FILE);
    std::fs::rename(&restoring, &path).map_err(io(&path))?;
    sync_dir(data_dir)?;
    Ok(manifest)
}

/// Reads and checks the manifest in `from`.
pub fn read_manifest(from: &Path) -> Result<Manifest> {
    let path = from.join(MANIFEST);
    let text = std::fs::read(&path).map_err(io(&path))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|source| BackupError::Manifest {
            path: path.clone(),
            source,
        })?;
    if manifest.format != FORMAT {
        return Err(BackupError::Format {
            path,
            found: manifest.format,
        });
    }
    Ok(manifest)
}

fn check(path: &Path, file: &BackedUp, bytes: u64, sha256: &str) -> Result<()> {
    if bytes != file.bytes {
        return Err(BackupError::Mismatch {
            path: path.to_path_buf(),
            field: "length",
            expected: file.bytes.to_string(),
            found: bytes.to_string(),
        });
    }
    if sha256 != file.sha256 {
        return Err(BackupError::Mismatch {
            path: path.to_path_buf(),
            field: "sha256",
            expected: file.sha256.clone(),
            found: sha256.to_string(),
        });
    }
    Ok(())
}

/// `rel` (from a manifest) under `dir`, if it is a plain relative path.
fn inside(dir: &Path, rel: &str) -> Result<PathBuf> {
    let path = Path::new(rel);
    if rel.is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(BackupError::UnsafePath(rel.to_string()));
    }
    Ok(dir.join(path))
}

/// Complete photo files under `blobs` (`<2 hex>/<name>.jpg`), by path relative to it.
fn complete_blobs(blobs: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(blobs) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(io(blobs)(e)),
    };
    for prefix in entries {
        let prefix = prefix.map_err(io(blobs))?;
        let name = prefix.file_name();
        let is_prefix = name.len() == 2
            && name
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_hexdigit()));
        if !is_prefix || !prefix.file_type().map_err(io(&prefix.path()))?.is_dir() {
            continue;
        }
        let dir = prefix.path();
        for file in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let file = file.map_err(io(&dir))?;
            let path = file.path();
            if path.extension().is_some_and(|e| e == "jpg")
                && file.file_type().map_err(io(&path))?.is_file()
            {
                found.push((Path::new(&name).join(file.file_name()), path));
            }
        }
    }
    found.sort();
    Ok(found)
}

fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    hash_into(&mut file, path, None)
}

/// Copies `from` to `to` (synced), returning the bytes' length and sha256.
fn copy_hashing(from: &Path, to: &Path) -> Result<(u64, String)> {
    let mut source = std::fs::File::open(from).map_err(io(from))?;
    let mut target = std::fs::File::create(to).map_err(io(to))?;
    let hashed = hash_into(&mut source, from, Some((&mut target, to)))?;
    target.sync_all().map_err(io(to))?;
    Ok(hashed)
}

fn hash_into(
    source: &mut std::fs::File,
    path: &Path,
    mut copy: Option<(&mut std::fs::File, &Path)>,
) -> Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = source.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
        if let Some((target, to)) = copy.as_mut() {
            target.write_all(&buf[..n]).map_err(io(to))?;
        }
    }
    Ok((total, hex::encode(hasher.finalize())))
}

fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))
}

fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_path_outside_the_backup_is_refused() {
        let dir = Path::new("/backup");
        for bad in ["", "/etc/passwd", "../x", "blobs/../../x", "./x"] {
            assert!(
                matches!(inside(dir, bad), Err(BackupError::UnsafePath(_))),
                "{bad}"
            );
        }
        assert_eq!(
            inside(dir, "blobs/ab/ab.jpg").ok(),
            Some(PathBuf::from("/backup/blobs/ab/ab.jpg"))
        );
    }
}
