//! Photo files (blobs) at the bureau, on disk beside the database:
//!
//! - `blobs/partial/<sha256>`: an upload in progress; its length is the offset a device
//!   resumes from. Bytes are appended as they arrive and synced before each answer.
//! - `blobs/<sha256[..2]>/<sha256>.jpg` (the device's layout): a complete blob. It appears
//!   only by renaming a partial file whose sha256 matched, so it is never partial or wrong.
//!
//! One upload per blob at a time: every operation on a blob holds its lock, so a device
//! retrying after a cut connection waits until the bureau has finished with the old
//! request, then sees every byte that got through.

use crate::error::{Error, Result};
use axum::body::Body;
use fieldlog_core::photo::{sha256_hex, stored_path};
use fieldlog_domain::sync::Refusal;
use http_body_util::BodyExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, MutexGuard};

/// A device that sends nothing for this long loses its upload's lock (what arrived stays).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const LOCK_STRIPES: usize = 64;

#[derive(Debug)]
pub struct BlobStore {
    dir: PathBuf,
    locks: [Mutex<()>; LOCK_STRIPES],
}

/// How much of a blob the bureau holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    Complete(u64),
    Partial(u64),
}

impl Held {
    pub fn offset(self) -> u64 {
        match self {
            Held::Complete(n) | Held::Partial(n) => n,
        }
    }
}

impl BlobStore {
    pub fn new(dir: &Path) -> BlobStore {
        BlobStore {
            dir: dir.to_path_buf(),
            locks: std::array::from_fn(|_| Mutex::new(())),
        }
    }

    /// Waits for exclusive use of one blob. `sha256` is already checked to be hex.
    pub async fn lock(&self, sha256: &str) -> MutexGuard<'_, ()> {
        let stripe = usize::from_str_radix(sha256.get(..2).unwrap_or("0"), 16).unwrap_or(0);
        self.locks[stripe % LOCK_STRIPES].lock().await
    }

    pub fn complete_path(&self, sha256: &str) -> PathBuf {
        stored_path(&self.dir, sha256)
    }

    fn partial_path(&self, sha256: &str) -> PathBuf {
        self.dir.join("partial").join(sha256)
    }

    pub fn held(&self, sha256: &str) -> Result<Held> {
        let len = |path: PathBuf| match std::fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Io { path, source }),
        };
        if let Some(n) = len(self.complete_path(sha256))? {
            return Ok(Held::Complete(n));
        }
        Ok(Held::Partial(len(self.partial_path(sha256))?.unwrap_or(0)))
    }

    /// Appends a body that starts at `offset` (which must be what the bureau holds) to a
    /// blob of `length` bytes, keeping whatever arrives even if the connection breaks. When
    /// the last byte is in, checks the sha256 and makes the blob complete (or discards it:
    /// `checksum_mismatch`). Returns what the bureau holds afterwards. The caller holds the
    /// blob's lock.
    pub async fn append(&self, sha256: &str, offset: u64, length: u64, body: Body) -> Result<Held> {
        let held = self.held(sha256)?;
        if let Held::Complete(_) = held {
            discard(body, length).await;
            return Ok(held);
        }
        if held.offset() != offset {
            discard(body, length).await;
            return Err(Error::OffsetMismatch {
                held: held.offset(),
            });
        }
        let path = self.partial_path(sha256);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io(dir))?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(io(&path))?;
        let mut written = offset;
        let mut body = body;
        let mut too_long = false;
        // A frame error or a silent device ends the body; what arrived is kept either way.
        while let Ok(Some(Ok(frame))) = tokio::time::timeout(IDLE_TIMEOUT, body.frame()).await {
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let room = usize::try_from(length - written).unwrap_or(usize::MAX);
            let take = data.len().min(room);
            file.write_all(&data[..take]).await.map_err(io(&path))?;
            written += take as u64;
            if take < data.len() {
                too_long = true;
                break;
            }
        }
        file.sync_data().await.map_err(io(&path))?;
        drop(file);
        if too_long {
            return Err(Error::refused(
                Refusal::Malformed,
                format!("the body runs past the blob's {length} bytes"),
            ));
        }
        if written < length {
            return Ok(Held::Partial(written));
        }
        self.complete(sha256, path, length).await
    }

    /// Verifies a fully received partial file and moves it into place.
    async fn complete(&self, sha256: &str, partial: PathBuf, length: u64) -> Result<Held> {
        let complete = self.complete_path(sha256);
        let expected = sha256.to_string();
        let outcome = tokio::task::spawn_blocking(move || -> Result<bool> {
            let io = |path: &Path| {
                let path = path.to_path_buf();
                move |source| Error::Io { path, source }
            };
            let bytes = std::fs::read(&partial).map_err(io(&partial))?;
            if sha256_hex(&bytes) != expected {
                std::fs::remove_file(&partial).map_err(io(&partial))?;
                return Ok(false);
            }
            let dir = complete.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            std::fs::rename(&partial, &complete).map_err(io(&complete))?;
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
            Ok(true)
        })
        .await
        .map_err(Error::Task)??;
        if outcome {
            Ok(Held::Complete(length))
        } else {
            Err(Error::refused(
                Refusal::ChecksumMismatch,
                format!("the bytes received do not hash to {sha256}; they were discarded"),
            ))
        }
    }
}

/// Reads and drops an upload's body (at most `length` bytes) that needs no storing, so the
/// device, still sending, gets the answer instead of a broken connection: a retry of a
/// finished upload is answered like the first.
pub(crate) async fn discard(mut body: Body, length: u64) {
    let mut seen = 0u64;
    while seen <= length
        && let Ok(Some(Ok(frame))) = tokio::time::timeout(IDLE_TIMEOUT, body.frame()).await
    {
        seen += frame.data_ref().map_or(0, |data| data.len() as u64);
    }
}

impl crate::Bureau {
    /// The length of a blob this device may upload or fetch: one that a visit in its scope,
    /// already at the bureau, shows. Anything else is `unknown_blob`, whether it exists or not.
    pub fn blob_length(&self, device: &crate::DeviceRecord, sha256: &str) -> Result<u64> {
        let unknown = || {
            Error::refused(
                Refusal::UnknownBlob,
                format!("no visit this device can see shows a photo file `{sha256}`"),
            )
        };
        if !fieldlog_domain::sync::is_sha256_hex(sha256) {
            return Err(unknown());
        }
        let scope = crate::Scope::of(device, &self.teams()?);
        let length = self
            .storage()
            .photo_refs(sha256)?
            .into_iter()
            .find(|(doc, _)| scope.allows(doc))
            .map(|(_, bytes)| bytes)
            .ok_or_else(unknown)?;
        if length > fieldlog_domain::sync::MAX_BLOB_BYTES {
            return Err(Error::refused(
                Refusal::TooLarge,
                format!(
                    "a photo file may be at most {} bytes",
                    fieldlog_domain::sync::MAX_BLOB_BYTES
                ),
            ));
        }
        Ok(length)
    }
}
