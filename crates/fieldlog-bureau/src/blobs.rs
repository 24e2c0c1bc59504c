//! Photo files (blobs) at the bureau: uploads in progress on its own disk, beside the
//! database, and complete files in a [`BlobStore`]:
//!
//! - `blobs/partial/<device id>/<sha256>`: one device's upload in progress; its length is
//!   the offset that device resumes from. Bytes are appended as they arrive and synced
//!   before each answer. Each device has its own, so no other device can add to it (a
//!   teammate's junk would only be found at the checksum) or hold it up.
//! - a complete blob: when the last byte is in and the sha256 matches, the partial file
//!   goes to the store ([`crate::blobstore`]): renamed to `blobs/<sha256[..2]>/<sha256>.jpg`
//!   (the device's layout) in the default [`LocalFolder`], or put whole, create-only, into
//!   an S3 bucket; then the partial file is gone. So a complete blob is never partial or
//!   wrong, and two devices completing the same blob store identical bytes.
//!
//! One operation per device and blob at a time: each holds that pair's lock, so a device
//! retrying after a cut connection waits until the bureau has finished with the old request
//! (at most the body timeouts of [`crate::net`]), then sees every byte that got through.
//! Partial files a device abandons are removed by [`Blobs::remove_stale`] when serving
//! starts.

use crate::blobstore::{BlobStore, LocalFolder, Opened};
use crate::error::{Error, Result};
use axum::body::Body;
use fieldlog_core::photo::sha256_hex;
use fieldlog_domain::DeviceId;
use fieldlog_domain::sync::Refusal;
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, OwnedMutexGuard};

type LockKey = (DeviceId, String);

/// Uploads in progress (and their locks) in `dir`, complete files in `store`.
#[derive(Debug)]
pub struct Blobs {
    dir: PathBuf,
    store: Arc<dyn BlobStore>,
    /// One lock per (device, blob) in use; an entry goes when its last user does.
    locks: std::sync::Mutex<HashMap<LockKey, Arc<Mutex<()>>>>,
}

/// How much of a blob the bureau holds (for one device, while partial).
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

/// Exclusive use of one device's upload of one blob, until dropped.
#[derive(Debug)]
pub struct BlobLock<'a> {
    // Fields drop in order: the mutex is released before the entry is tidied.
    _guard: OwnedMutexGuard<()>,
    _entry: LockEntry<'a>,
}

/// A use of a lock entry; the last one to go removes the entry from the map.
#[derive(Debug)]
struct LockEntry<'a> {
    store: &'a Blobs,
    key: LockKey,
    mutex: Arc<Mutex<()>>,
}

impl Drop for LockEntry<'_> {
    fn drop(&mut self) {
        let mut locks = self.store.lock_map();
        // Clones are made only under the map's lock: two left means the map's and ours.
        if Arc::strong_count(&self.mutex) == 2 {
            locks.remove(&self.key);
        }
    }
}

impl Blobs {
    /// Uploads and complete files both in `dir` (the default: a [`LocalFolder`]).
    pub fn new(dir: &Path) -> Blobs {
        Blobs::with_store(dir, Arc::new(LocalFolder::new(dir)))
    }

    /// Uploads in progress in `dir`, complete files in `store`.
    pub fn with_store(dir: &Path, store: Arc<dyn BlobStore>) -> Blobs {
        Blobs {
            dir: dir.to_path_buf(),
            store,
            locks: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Where complete files are kept.
    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.store
    }

    /// The directory of uploads in progress (and of complete files, in a [`LocalFolder`]).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock_map(&self) -> std::sync::MutexGuard<'_, HashMap<LockKey, Arc<Mutex<()>>>> {
        self.locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for exclusive use of `device`'s upload of a blob. `sha256` is already checked
    /// to be hex.
    pub async fn lock(&self, device: DeviceId, sha256: &str) -> BlobLock<'_> {
        let key = (device, sha256.to_string());
        let mutex = self.lock_map().entry(key.clone()).or_default().clone();
        // Made before waiting, so a waiter that gives up still tidies the entry.
        let entry = LockEntry {
            store: self,
            key,
            mutex: mutex.clone(),
        };
        BlobLock {
            _guard: mutex.lock_owned().await,
            _entry: entry,
        }
    }

    /// How many (device, blob) locks are in use or awaited.
    pub fn locks_in_use(&self) -> usize {
        self.lock_map().len()
    }

    fn partial_dir(&self) -> PathBuf {
        self.dir.join("partial")
    }

    fn partial_path(&self, device: DeviceId, sha256: &str) -> PathBuf {
        self.partial_dir().join(device.to_string()).join(sha256)
    }

    /// Whether the blob is complete (and its length). It waits for the store: call it where
    /// blocking is allowed (an admin command, the blocking pool), never on an async worker.
    pub fn complete(&self, sha256: &str) -> Result<Option<u64>> {
        Ok(futures::executor::block_on(self.store.len(sha256))?)
    }

    /// The complete blob's bytes, if the store holds it.
    pub async fn open(&self, sha256: &str) -> Result<Option<Opened>> {
        Ok(self.store.open(sha256).await?)
    }

    /// Whether uploads can be taken: the directory for uploads in progress is there, and
    /// the store answers.
    pub async fn check(&self) -> Result<(), crate::blobstore::BlobStoreError> {
        LocalFolder::new(&self.dir).check().await?;
        self.store.check().await
    }

    /// What the bureau holds of a blob of `length` bytes for `device`: the whole blob if any
    /// device completed it, else this device's partial file. A partial file as long as the
    /// blob (a crash before the check) is checked now; a longer one (the visit's recorded
    /// length changed) is dropped. The caller holds the (device, blob) lock.
    pub async fn held(&self, device: DeviceId, sha256: &str, length: u64) -> Result<Held> {
        let path = self.partial_path(device, sha256);
        if let Some(n) = self.store.len(sha256).await? {
            // Another device finished it: this device's partial file is of no more use.
            remove_if_present(&path)?;
            return Ok(Held::Complete(n));
        }
        let held = file_len(path.clone())?.unwrap_or(0);
        if held < length {
            return Ok(Held::Partial(held));
        }
        if held == length {
            match self.finish(sha256, path, length).await {
                Err(e) if e.refusal() == Some(Refusal::ChecksumMismatch) => {
                    return Ok(Held::Partial(0));
                }
                other => return other,
            }
        }
        remove_if_present(&path)?;
        Ok(Held::Partial(0))
    }

    /// Appends a body that starts at `offset` (which must be what the bureau holds for this
    /// device) to a blob of `length` bytes, keeping whatever arrives even if the connection
    /// breaks or the body times out (`too_slow`). When the last byte is in, checks the
    /// sha256 and makes the blob complete (or discards it: `checksum_mismatch`). Returns
    /// what the bureau holds afterwards. The caller holds the (device, blob) lock and
    /// checked `offset <= length`.
    pub async fn append(
        &self,
        device: DeviceId,
        sha256: &str,
        offset: u64,
        length: u64,
        body: Body,
    ) -> Result<Held> {
        let held = self.held(device, sha256, length).await?;
        let path = self.partial_path(device, sha256);
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
        let mut cut = None;
        // A frame error (a cut connection, a body timeout) ends the body; what arrived is
        // kept either way.
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(frame) => frame,
                Err(e) => {
                    cut = Some(e);
                    break;
                }
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let room = usize::try_from(length.saturating_sub(written)).unwrap_or(usize::MAX);
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
        // A device still there is told (`too_slow`, then the connection closes); it asks
        // for the offset and resumes. One that went hears nothing either way.
        if let Some(e) = cut
            && crate::net::is_body_timeout(&e)
        {
            return Err(Error::refused(
                Refusal::TooSlow,
                format!(
                    "the body was cut after {written} of {length} bytes, which are kept: {}",
                    crate::http::error_chain(&e)
                ),
            ));
        }
        if written < length {
            return Ok(Held::Partial(written));
        }
        self.finish(sha256, path, length).await
    }

    /// Verifies a fully received partial file and gives it to the store; the partial file
    /// is then gone. If the store fails, the partial file stays whole, and the next request
    /// for it (`HEAD` or `PATCH`) checks and gives it again.
    async fn finish(&self, sha256: &str, partial: PathBuf, length: u64) -> Result<Held> {
        let expected = sha256.to_string();
        let checked = partial.clone();
        let matched = tokio::task::spawn_blocking(move || -> Result<bool> {
            let io = |source| Error::Io {
                path: checked.clone(),
                source,
            };
            let bytes = std::fs::read(&checked).map_err(io)?;
            if sha256_hex(&bytes) != expected {
                std::fs::remove_file(&checked).map_err(io)?;
                return Ok(false);
            }
            Ok(true)
        })
        .await
        .map_err(Error::Task)??;
        if !matched {
            return Err(Error::refused(
                Refusal::ChecksumMismatch,
                format!("the bytes received do not hash to {sha256}; they were discarded"),
            ));
        }
        self.store.put_complete(sha256, &partial, length).await?;
        // A store that copied the file leaves it; one that renamed it did not.
        remove_if_present(&partial)?;
        Ok(Held::Complete(length))
    }

    /// Removes partial files not written to for `max_age` (a device that never came back;
    /// should it return, it starts those files again from 0), files of the old shared
    /// layout (`partial/<sha256>`), and device directories left empty. Returns how many
    /// files went. Run it before serving: it takes no locks.
    pub fn remove_stale(&self, max_age: Duration) -> Result<usize> {
        let root = self.partial_dir();
        let now = SystemTime::now();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        let entries = match std::fs::read_dir(&root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(source) => return Err(Error::Io { path: root, source }),
        };
        let mut removed = 0;
        for entry in entries {
            let path = entry.map_err(io(&root))?.path();
            if !path.is_dir() {
                std::fs::remove_file(&path).map_err(io(&path))?;
                removed += 1;
                continue;
            }
            let mut left = 0;
            for file in std::fs::read_dir(&path).map_err(io(&path))? {
                let file = file.map_err(io(&path))?.path();
                let modified = std::fs::metadata(&file)
                    .and_then(|m| m.modified())
                    .map_err(io(&file))?;
                if now.duration_since(modified).unwrap_or_default() > max_age {
                    std::fs::remove_file(&file).map_err(io(&file))?;
                    removed += 1;
                } else {
                    left += 1;
                }
            }
            if left == 0 {
                std::fs::remove_dir(&path).map_err(io(&path))?;
            }
        }
        Ok(removed)
    }
}

fn file_len(path: PathBuf) -> Result<Option<u64>> {
    match std::fs::metadata(&path) {
        Ok(meta) => Ok(Some(meta.len())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io { path, source }),
    }
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads and drops an upload's body (at most `length` bytes) that needs no storing, so the
/// device, still sending, gets the answer instead of a broken connection: a retry of a
/// finished upload is answered like the first. A body that stalls is cut by its timeouts.
pub(crate) async fn discard(mut body: Body, length: u64) {
    let mut seen = 0u64;
    while seen <= length
        && let Some(Ok(frame)) = body.frame().await
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
        let scope = self.scope_of(device)?;
        let length = self
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
