//! Photos picked for a visit that is not saved yet.
//!
//! [`Store::stage_photo`] ingests a picked photo once (display copy and thumbnail into the
//! photo directory, so a bad file is refused at once) and keeps, under `<data dir>/staging`,
//! the source (for the originals setting) and what ingest learnt, named by a token.
//! [`Store::save_visit`] attaches staged photos by token, without decoding them again, and
//! then removes them from staging. A staged photo nobody saved goes when it is discarded
//! ([`Store::discard_staged_photos`]: the editor was cancelled) or a day after it was staged
//! (checked when a store opens and at each staging), together with its display copy and
//! thumbnail unless a visit or another staged photo shows them.

use crate::error::{DbContext, Error, Result};
use crate::photo::{IngestedPhoto, Limits, StoredImage, stored_path, write_atomically};
use crate::store::Store;
use fieldlog_domain::photo::PhotoRef;
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where staged photos wait, under the data directory.
pub const STAGING_DIR: &str = "staging";
/// How long a staged photo waits for its visit to be saved.
pub const STAGED_PHOTO_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// A photo ingested for a visit not saved yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedPhoto {
    /// Names the photo in [`crate::store::PhotoToAttach`]: 32 hex digits.
    pub token: String,
    pub display_sha256: String,
    pub thumbnail_sha256: String,
}

/// What `staging/<token>.json` holds. Written before the source, so every staged file has
/// one and expires.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StagedRecord {
    pub staged_at: i64,
    /// `None` while the photo is being ingested.
    pub ingested: Option<Ingested>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Ingested {
    pub display_sha256: String,
    pub thumbnail_sha256: String,
    pub width: u32,
    pub height: u32,
    pub display_bytes: u64,
    pub thumbnail_bytes: u64,
    pub taken_at: Option<String>,
    pub source_extension: String,
}

impl From<IngestedPhoto> for Ingested {
    fn from(photo: IngestedPhoto) -> Self {
        let IngestedPhoto {
            display:
                StoredImage {
                    sha256: display_sha256,
                    width,
                    height,
                    bytes: display_bytes,
                },
            thumbnail:
                StoredImage {
                    sha256: thumbnail_sha256,
                    bytes: thumbnail_bytes,
                    ..
                },
            taken_at,
            source_extension,
            ..
        } = photo;
        Ingested {
            display_sha256,
            thumbnail_sha256,
            width,
            height,
            display_bytes,
            thumbnail_bytes,
            taken_at,
            source_extension: source_extension.to_string(),
        }
    }
}

impl Ingested {
    /// The visit's record of this photo.
    pub fn photo_ref(&self, caption: String, consent: bool) -> PhotoRef {
        PhotoRef {
            display_sha256: self.display_sha256.clone(),
            thumbnail_sha256: self.thumbnail_sha256.clone(),
            caption,
            consent,
            taken_at: self.taken_at.clone(),
            width: self.width,
            height: self.height,
            display_bytes: self.display_bytes,
            thumbnail_bytes: self.thumbnail_bytes,
        }
    }
}

/// A staged photo found by its token, ready to attach.
#[derive(Debug, Clone)]
pub(crate) struct Staged {
    pub token: String,
    pub source: PathBuf,
    pub photo: Ingested,
}

fn is_token(token: &str) -> bool {
    token.len() == 32 && token.chars().all(|c| c.is_ascii_hexdigit())
}

impl Store {
    fn staging_dir(&self) -> PathBuf {
        self.path
            .parent()
            .map_or_else(|| PathBuf::from(STAGING_DIR), |dir| dir.join(STAGING_DIR))
    }

    fn staged_files(&self, token: &str) -> (PathBuf, PathBuf) {
        let dir = self.staging_dir();
        (
            dir.join(format!("{token}.json")),
            dir.join(format!("{token}.source")),
        )
    }

    /// Ingests a picked photo and keeps it until its visit is saved. A file that is not a
    /// usable photo is refused now, with nothing kept. Staged photos older than a day go.
    pub fn stage_photo(&mut self, bytes: &[u8]) -> Result<StagedPhoto> {
        self.expire_staged_photos()?;
        let token = uuid::Uuid::now_v7().simple().to_string();
        let (record_path, source) = self.staged_files(&token);
        let mut record = StagedRecord {
            staged_at: self.clock.now_ms(),
            ingested: None,
        };
        let write = |path: &Path, data: &[u8]| {
            write_atomically(path, data).map_err(|source| Error::Io {
                path: path.to_owned(),
                source,
            })
        };
        write(&record_path, &record_json(&record))?;
        let ingested = write(&source, bytes).and_then(|()| {
            crate::photo::ingest(&source, &self.photo_dir(), &Limits::default())
                .map_err(Error::from)
        });
        let ingested = match ingested {
            Ok(ingested) => Ingested::from(ingested),
            Err(error) => {
                self.remove_staged(&token);
                return Err(error);
            }
        };
        let staged = StagedPhoto {
            token,
            display_sha256: ingested.display_sha256.clone(),
            thumbnail_sha256: ingested.thumbnail_sha256.clone(),
        };
        record.ingested = Some(ingested);
        write(&record_path, &record_json(&record))?;
        Ok(staged)
    }

    /// Forgets staged photos that will not be saved (the editor was cancelled), with their
    /// display copies and thumbnails unless something else shows them. Unknown tokens are
    /// ignored: they may have expired already.
    pub fn discard_staged_photos(&mut self, tokens: &[String]) -> Result<()> {
        for token in tokens.iter().filter(|t| is_token(t)) {
            self.discard_staged(token)?;
        }
        Ok(())
    }

    /// Discards every staged photo older than [`STAGED_PHOTO_TTL_MS`]. Returns how many.
    pub fn expire_staged_photos(&mut self) -> Result<usize> {
        let Ok(entries) = std::fs::read_dir(self.staging_dir()) else {
            return Ok(0);
        };
        let now = self.clock.now_ms();
        let mut tokens: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let (token, _) = name.split_once('.')?;
                is_token(token).then(|| token.to_string())
            })
            .collect();
        tokens.sort();
        tokens.dedup();
        let mut expired = 0;
        for token in tokens {
            // No readable record: left by a crash mid-write, never to be saved.
            let old = self
                .staged_record(&token)
                .is_none_or(|r| now.saturating_sub(r.staged_at) >= STAGED_PHOTO_TTL_MS);
            if old {
                self.discard_staged(&token)?;
                expired += 1;
            }
        }
        Ok(expired)
    }

    fn staged_record(&self, token: &str) -> Option<StagedRecord> {
        let data = std::fs::read(self.staged_files(token).0).ok()?;
        serde_json::from_slice(&data).ok()
    }

    /// The staged photos these tokens name, in order; an unknown token refuses them all.
    pub(crate) fn staged(&self, tokens: &[&str]) -> Result<Vec<Staged>> {
        tokens
            .iter()
            .map(|&token| {
                let found = is_token(token)
                    .then(|| self.staged_record(token))
                    .flatten()
                    .and_then(|r| r.ingested)
                    .map(|photo| Staged {
                        token: token.to_string(),
                        source: self.staged_files(token).1,
                        photo,
                    })
                    .filter(|s| s.source.is_file());
                found.ok_or_else(|| Error::StagedPhotoNotFound {
                    token: token.to_string(),
                })
            })
            .collect()
    }

    /// Removes a staged photo's own files, source first (a record alone still expires).
    pub(crate) fn remove_staged(&self, token: &str) {
        let (record, source) = self.staged_files(token);
        let _ = std::fs::remove_file(source);
        let _ = std::fs::remove_file(record);
    }

    fn discard_staged(&mut self, token: &str) -> Result<()> {
        let ingested = self.staged_record(token).and_then(|r| r.ingested);
        self.remove_staged(token);
        let Some(photo) = ingested else {
            return Ok(());
        };
        for sha256 in [photo.display_sha256, photo.thumbnail_sha256] {
            if !self.photo_file_in_use(&sha256)? {
                let path = stored_path(&self.photo_dir(), &sha256);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(Error::Io { path, source }),
                }
            }
        }
        Ok(())
    }

    /// Whether a visit shows this file, it waits to upload, or another staged photo has it.
    fn photo_file_in_use(&self, sha256: &str) -> Result<bool> {
        let listed: Option<i64> = self
            .conn
            .query_row(
                "SELECT 1 WHERE EXISTS (SELECT 1 FROM visit_photos WHERE sha256 = ?1)
                    OR EXISTS (SELECT 1 FROM photo_files WHERE sha256 = ?1)",
                [sha256],
                |r| r.get(0),
            )
            .optional()
            .db(&self.path)?;
        if listed.is_some() {
            return Ok(true);
        }
        let Ok(entries) = std::fs::read_dir(self.staging_dir()) else {
            return Ok(false);
        };
        Ok(entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".json")
                .and_then(|token| self.staged_record(token))
                .and_then(|r| r.ingested)
                .is_some_and(|p| p.display_sha256 == sha256 || p.thumbnail_sha256 == sha256)
        }))
    }
}

fn record_json(record: &StagedRecord) -> Vec<u8> {
    serde_json::to_vec(record).unwrap_or_default()
}
