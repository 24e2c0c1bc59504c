//! Photo files and the bureau: the upload queue, resumable uploads, fetching, and the
//! originals kept on the device (protocol: "Photo files" in [`fieldlog_domain::sync`]).
//!
//! The queue is every thumbnail and display copy ingested here that a live visit still shows
//! and the bureau has not confirmed: thumbnails first (a coordinator sees every photo soon),
//! then display copies, oldest first. Each upload asks the bureau how many bytes it holds and
//! sends only the rest, so a cut connection costs the bytes in flight, never the file.

use crate::error::{DbContext, Error, Result};
use crate::photo::{sha256_hex, stored_path, write_atomically};
use crate::settings::OriginalsPolicy;
use crate::store::Store;
use crate::sync::{SyncSummary, network, read_body, refusal};
use fieldlog_domain::sync::{
    BLOB_CONTENT_TYPE, MAX_BLOB_BYTES, Refusal, UPLOAD_LENGTH, UPLOAD_OFFSET, blob_path,
    is_sha256_hex,
};
use rusqlite::params;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Photo files that wait for the bureau.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadQueue {
    /// Photos with at least one file waiting.
    pub photos: usize,
    pub files: usize,
    pub bytes: u64,
}

/// One file to upload.
#[derive(Debug, Clone)]
struct Queued {
    photo: String,
    sha256: String,
    bytes: u64,
    path: PathBuf,
}

/// An original written next to the store by [`Store::keep_original`].
#[derive(Debug, Clone)]
pub(crate) struct KeptOriginal {
    pub sha256: String,
    pub bytes: u64,
    pub path: PathBuf,
    /// False if the same original was already kept.
    pub written: bool,
}

impl Store {
    /// The files the next sync will upload, in order.
    fn queued_files(&self) -> Result<Vec<Queued>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT f.photo, f.sha256, f.bytes FROM photo_files f
                 WHERE f.uploaded_at IS NULL AND f.role IN ('thumbnail', 'display')
                   AND EXISTS (SELECT 1 FROM visit_photos p JOIN visits v ON v.id = p.visit_id
                               WHERE p.sha256 = f.sha256 AND v.deleted = 0)
                 ORDER BY f.role = 'display', f.added_at, f.photo",
            )
            .db(&self.path)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .db(&self.path)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .db(&self.path)?;
        let dir = self.photo_dir();
        Ok(rows
            .into_iter()
            .map(|(photo, sha256, bytes)| Queued {
                path: stored_path(&dir, &sha256),
                photo,
                sha256,
                bytes: u64::try_from(bytes).unwrap_or(0),
            })
            // A file attached before the queue existed may have come from elsewhere.
            .filter(|q| q.path.is_file())
            .collect())
    }

    /// What waits to upload.
    pub fn upload_queue(&self) -> Result<UploadQueue> {
        let queued = self.queued_files()?;
        let photos: std::collections::BTreeSet<&str> =
            queued.iter().map(|q| q.photo.as_str()).collect();
        Ok(UploadQueue {
            photos: photos.len(),
            files: queued.len(),
            bytes: queued.iter().map(|q| q.bytes).sum(),
        })
    }

    /// The sha256 of every photo file waiting to upload.
    pub fn waiting_photo_files(&self) -> Result<std::collections::BTreeSet<String>> {
        Ok(self.queued_files()?.into_iter().map(|q| q.sha256).collect())
    }

    /// Records that the bureau holds a file, then lets go of originals the setting no longer
    /// needs.
    fn mark_uploaded(&mut self, sha256: &str) -> Result<()> {
        let now = self.clock.now_ms();
        self.conn
            .execute(
                "UPDATE photo_files SET uploaded_at = ?1
                 WHERE sha256 = ?2 AND role != 'original' AND uploaded_at IS NULL",
                params![now, sha256],
            )
            .db(&self.path)?;
        self.drop_originals(self.settings()?.originals)
    }

    /// Where a photo's original is kept, whatever its extension.
    fn original_dir(&self) -> PathBuf {
        self.photo_dir().join("originals")
    }

    /// Copies a photo's source file under `photos/originals/<photo>.<ext>`.
    pub(crate) fn keep_original(
        &self,
        source: &Path,
        photo: &str,
        extension: &str,
    ) -> Result<KeptOriginal> {
        let path = self.original_dir().join(format!("{photo}.{extension}"));
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { path, source }
        };
        let data = std::fs::read(source).map_err(io(source))?;
        let written = !path.is_file();
        if written {
            write_atomically(&path, &data).map_err(io(&path))?;
        }
        Ok(KeptOriginal {
            sha256: sha256_hex(&data),
            bytes: data.len() as u64,
            path,
            written,
        })
    }

    /// Deletes the originals `policy` does not keep: all of them for `drop`, those whose
    /// thumbnail and display copy the bureau holds for `until-uploaded`.
    pub(crate) fn drop_originals(&mut self, policy: OriginalsPolicy) -> Result<()> {
        let condition = match policy {
            OriginalsPolicy::Keep => return Ok(()),
            OriginalsPolicy::Drop => "1",
            OriginalsPolicy::UntilUploaded => {
                "NOT EXISTS (SELECT 1 FROM photo_files w WHERE w.photo = o.photo
                             AND w.role != 'original' AND w.uploaded_at IS NULL)"
            }
        };
        let photos: Vec<String> = self
            .conn
            .prepare(&format!(
                "SELECT o.photo FROM photo_files o WHERE o.role = 'original' AND {condition}"
            ))
            .db(&self.path)?
            .query_map([], |r| r.get(0))
            .db(&self.path)?
            .collect::<rusqlite::Result<_>>()
            .db(&self.path)?;
        let dir = self.original_dir();
        for photo in photos {
            for extension in ["jpg", "png", "webp"] {
                let path = dir.join(format!("{photo}.{extension}"));
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(Error::Io { path, source }),
                }
            }
            self.conn
                .execute(
                    "DELETE FROM photo_files WHERE photo = ?1 AND role = 'original'",
                    [&photo],
                )
                .db(&self.path)?;
        }
        Ok(())
    }
}

/// Uploads every queued file, reporting progress through `summary` as bytes go.
pub(crate) fn upload_photos(
    store: &mut Store,
    agent: &ureq::Agent,
    url: &str,
    token: &str,
    summary: &mut SyncSummary,
    progress: &mut dyn FnMut(&SyncSummary),
) -> Result<()> {
    let queued = store.queued_files()?;
    if queued.is_empty() {
        return Ok(());
    }
    summary.photos_total = queued
        .iter()
        .map(|q| q.photo.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    summary.photo_bytes_total = queued.iter().map(|q| q.bytes).sum();
    for (index, file) in queued.iter().enumerate() {
        let before = summary.photo_bytes_done;
        let outcome = upload_file(agent, url, token, file, &mut |held, sent| {
            summary.photo_bytes_done = before + held;
            summary.bytes_sent += sent as u64;
            progress(summary);
        });
        match outcome {
            Ok(()) => store.mark_uploaded(&file.sha256)?,
            // The bureau lacks the visit (it waits on another device's changes) or the file
            // here no longer matches its name: the others still go.
            Err(Error::Refused {
                reason: Refusal::UnknownBlob | Refusal::ChecksumMismatch,
                ref message,
                ..
            }) => tracing::warn!(sha256 = %file.sha256, message, "photo file not uploaded"),
            Err(e) => return Err(e),
        }
        summary.photo_bytes_done = before + file.bytes;
        let last_of_photo = !queued[index + 1..].iter().any(|q| q.photo == file.photo);
        if last_of_photo {
            summary.photos_done += 1;
        }
        progress(summary);
    }
    Ok(())
}

/// How many times one file may find the bureau's offset moved under it.
const OFFSET_RETRIES: usize = 3;
/// The most bytes one request carries: on a slow 2G link (about 6 KB/s) it still finishes
/// well within a round's timeout, and each answer is a point the bureau has synced to disk.
const UPLOAD_CHUNK_BYTES: u64 = 256 * 1024;

/// Sends one file from where the bureau's copy ends, in chunks. `on_progress` hears (bytes
/// the bureau holds or is being sent, body bytes sent by this call of the callback).
fn upload_file(
    agent: &ureq::Agent,
    url: &str,
    token: &str,
    file: &Queued,
    on_progress: &mut dyn FnMut(u64, usize),
) -> Result<()> {
    let endpoint = format!("{url}{}", blob_path(&file.sha256));
    let io = |source| Error::Io {
        path: file.path.clone(),
        source,
    };
    let mut offset = held_offset(agent, &endpoint, token)?;
    let mut mismatches = 0;
    loop {
        on_progress(offset, 0);
        if offset >= file.bytes {
            return Ok(());
        }
        let chunk = (file.bytes - offset).min(UPLOAD_CHUNK_BYTES);
        let mut source = File::open(&file.path).map_err(io)?;
        source.seek(SeekFrom::Start(offset)).map_err(io)?;
        let mut body = Counted {
            inner: source.take(chunk),
            start: offset,
            sent: 0,
            on_progress: &mut *on_progress,
        };
        let mut response = agent
            .patch(&endpoint)
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", BLOB_CONTENT_TYPE)
            .header("Content-Length", chunk.to_string())
            .header(UPLOAD_OFFSET, offset.to_string())
            .header(UPLOAD_LENGTH, file.bytes.to_string())
            .send(ureq::SendBody::from_reader(&mut body))
            .map_err(|e| network(&endpoint, e))?;
        let status = response.status().as_u16();
        let held = header_u64(&response, UPLOAD_OFFSET);
        let answer = read_body(&endpoint, response.body_mut())?;
        offset = match (status, held) {
            (200..=299, Some(held)) if held > offset => held,
            (409, Some(held)) if mismatches < OFFSET_RETRIES => {
                mismatches += 1;
                held
            }
            (200..=299, _) => {
                return Err(Error::BadResponse {
                    detail: format!("the bureau took none of {}", file.sha256),
                });
            }
            _ => return Err(refusal(status, &answer)),
        };
    }
}

/// How many bytes of a blob the bureau holds.
fn held_offset(agent: &ureq::Agent, endpoint: &str, token: &str) -> Result<u64> {
    let mut response = agent
        .head(endpoint)
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .map_err(|e| network(endpoint, e))?;
    let status = response.status().as_u16();
    match header_u64(&response, UPLOAD_OFFSET) {
        Some(offset) if response.status().is_success() => Ok(offset),
        _ => {
            let body = read_body(endpoint, response.body_mut())?;
            Err(head_refusal(status, &body))
        }
    }
}

/// A `HEAD` answer has no body, so a refusal is known by its status alone.
fn head_refusal(status: u16, body: &[u8]) -> Error {
    let reason = match status {
        401 => Some(Refusal::Unauthenticated),
        404 => Some(Refusal::UnknownBlob),
        _ => None,
    };
    match reason {
        Some(reason) if body.is_empty() => Error::Refused {
            status,
            reason,
            message: format!("HTTP {status}"),
        },
        _ => refusal(status, body),
    }
}

fn header_u64(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<u64> {
    response
        .headers()
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A body reader that reports progress as the HTTP client pulls bytes from it.
struct Counted<'a, R> {
    inner: R,
    start: u64,
    sent: usize,
    on_progress: &'a mut dyn FnMut(u64, usize),
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent += n;
        (self.on_progress)(self.start + self.sent as u64, n);
        Ok(n)
    }
}

/// A photo file by sha256: from this device if it is here, otherwise fetched from the bureau
/// (which serves it only if a visit this device may see shows it), checked and stored.
pub fn fetch_photo(store: &Store, sha256: &str) -> Result<PathBuf> {
    let path = stored_path(&store.photo_dir(), sha256);
    if path.is_file() {
        return Ok(path);
    }
    if !is_sha256_hex(sha256) {
        return Err(Error::BadResponse {
            detail: format!("`{sha256}` is not a photo file name"),
        });
    }
    let (enrollment, token) = store.bureau_row()?.ok_or(Error::NotEnrolled)?;
    let endpoint = format!("{}{}", enrollment.url, blob_path(sha256));
    let mut response = crate::sync::agent()
        .get(&endpoint)
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .map_err(|e| network(&endpoint, e))?;
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_BLOB_BYTES)
        .read_to_vec()
        .map_err(|e| network(&endpoint, e))?;
    if !response.status().is_success() {
        return Err(refusal(response.status().as_u16(), &body));
    }
    if sha256_hex(&body) != sha256 {
        return Err(Error::BadResponse {
            detail: format!("the bureau's copy of {sha256} does not match its name"),
        });
    }
    write_atomically(&path, &body).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}
