//! Complete photo files in a directory on this machine: `<dir>/<2 hex>/<sha256>.jpg`.

use super::{BlobStore, BlobStoreError, BoxFuture, Opened, relative_name};
use bytes::BytesMut;
use std::path::{Path, PathBuf};
use tokio::io::AsyncReadExt;

/// How much of a file one chunk of a `GET` carries.
const CHUNK: usize = 64 * 1024;

/// The default store: a directory beside the database (the bureau's `blobs/`).
#[derive(Debug, Clone)]
pub struct LocalFolder {
    dir: PathBuf,
}

impl LocalFolder {
    pub fn new(dir: &Path) -> LocalFolder {
        LocalFolder {
            dir: dir.to_path_buf(),
        }
    }

    /// Where the complete file of `sha256` is (or would be).
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(relative_name(sha256))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BlobStoreError + '_ {
    move |source| BlobStoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl BlobStore for LocalFolder {
    fn location(&self) -> String {
        format!("the blob directory {}", self.dir.display())
    }

    fn local_dir(&self) -> Option<&Path> {
        Some(&self.dir)
    }

    fn len<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<Option<u64>, BlobStoreError>> {
        // A stat, synchronous as before the seam, so it also answers outside a runtime.
        let path = self.path(sha256);
        let len = match std::fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(BlobStoreError::Io { path, source }),
        };
        Box::pin(std::future::ready(len))
    }

    fn put_complete<'a>(
        &'a self,
        sha256: &'a str,
        file: &'a Path,
        _length: u64,
    ) -> BoxFuture<'a, Result<(), BlobStoreError>> {
        let (from, to) = (file.to_path_buf(), self.path(sha256));
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let dir = to.parent().unwrap_or(Path::new("."));
                std::fs::create_dir_all(dir).map_err(io(dir))?;
                // Atomic; if another device completed it first, the same bytes replace it.
                std::fs::rename(&from, &to).map_err(io(&to))?;
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io(dir))
            })
            .await
            .map_err(BlobStoreError::Task)?
        })
    }

    fn open<'a>(
        &'a self,
        sha256: &'a str,
    ) -> BoxFuture<'a, Result<Option<Opened>, BlobStoreError>> {
        let path = self.path(sha256);
        Box::pin(async move {
            let file = match tokio::fs::File::open(&path).await {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(source) => return Err(BlobStoreError::Io { path, source }),
            };
            let length = file.metadata().await.map_err(io(&path))?.len();
            // Chunks until the end or the first error, which ends the body.
            let bytes = futures::stream::unfold(Some(file), |file| async move {
                let mut file = file?;
                let mut buf = BytesMut::with_capacity(CHUNK);
                match file.read_buf(&mut buf).await {
                    Ok(0) => None,
                    Ok(_) => Some((Ok(buf.freeze()), Some(file))),
                    Err(e) => Some((Err(e), None)),
                }
            });
            Ok(Some(Opened {
                length,
                bytes: Box::pin(bytes),
            }))
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), BlobStoreError>> {
        Box::pin(async move {
            match tokio::fs::metadata(&self.dir).await {
                Ok(meta) if meta.is_dir() => Ok(()),
                Ok(_) => Err(BlobStoreError::NotADirectory(self.dir.clone())),
                Err(source) => Err(BlobStoreError::Dir {
                    path: self.dir.clone(),
                    source,
                }),
            }
        })
    }
}
