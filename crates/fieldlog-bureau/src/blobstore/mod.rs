//! Where complete photo files are kept: the seam between the upload protocol ([`crate::blobs`],
//! which keeps every partial upload on the bureau's own disk and checks each finished file's
//! sha256) and the place a verified file goes.
//!
//! - [`LocalFolder`] (the default): `blobs/<sha256[..2]>/<sha256>.jpg` beside the database,
//!   the device's own layout. A verified partial file is renamed into place.
//! - [`S3Store`] (`--blobs s3://bucket/prefix`): the same names under `prefix` in an
//!   S3-compatible bucket, through `object_store`. A verified file is put whole and
//!   create-only (photos are at most 16 MiB, most under S3's 5 MiB minimum part), with its
//!   sha256 for the server to check; `GET` streams from the bucket.
//!
//! A store only ever holds complete, checked files named by their sha256, so two devices
//! completing the same file put the same bytes, and a name that is there is whole.

mod local;
mod s3;

pub use local::LocalFolder;
pub use s3::{S3ConfigError, S3Settings, S3Store};

use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::pin::Pin;

/// A future a [`BlobStore`] returns (the trait is used as `dyn BlobStore`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A complete file's bytes, as they are read.
pub type ByteStream = Pin<Box<dyn futures::Stream<Item = std::io::Result<Bytes>> + Send>>;

/// An open complete file: its length and its bytes.
pub struct Opened {
    pub length: u64,
    pub bytes: ByteStream,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

/// Where complete photo files are kept, by sha256 (lowercase hex, already checked).
pub trait BlobStore: std::fmt::Debug + Send + Sync {
    /// Where the files are, for messages: the directory, or `s3://bucket/prefix` and its
    /// endpoint.
    fn location(&self) -> String;

    /// The directory the files are in, if they are in one on this machine (backups copy
    /// it; the metrics walk it).
    fn local_dir(&self) -> Option<&Path>;

    /// The length of the complete file, if the store holds it.
    fn len<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<Option<u64>, BlobStoreError>>;

    /// Takes `file`, whose `length` bytes were checked to hash to `sha256`, as the complete
    /// file. Create-only: if the store already holds it (another device completed it), what
    /// it holds stays, which is the same bytes. `file` may be gone afterwards.
    fn put_complete<'a>(
        &'a self,
        sha256: &'a str,
        file: &'a Path,
        length: u64,
    ) -> BoxFuture<'a, Result<(), BlobStoreError>>;

    /// The complete file's bytes, if the store holds it.
    fn open<'a>(&'a self, sha256: &'a str)
    -> BoxFuture<'a, Result<Option<Opened>, BlobStoreError>>;

    /// Whether the store answers (for `/readyz` and before serving): the directory is
    /// there, or the bucket can be listed with these credentials.
    fn check(&self) -> BoxFuture<'_, Result<(), BlobStoreError>>;
}

/// What went wrong with the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobStoreError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the blob directory {path}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the blob directory {0} is not a directory")]
    NotADirectory(PathBuf),
    /// The bucket is not there (or the endpoint is not an S3 server answering for it).
    #[error("{store}: the bucket `{bucket}` does not exist at this endpoint")]
    NoBucket {
        store: String,
        bucket: String,
        #[source]
        source: Box<object_store::Error>,
    },
    /// The server refused the access key, the secret or the signature.
    #[error(
        "{store}: the credentials were refused (check s3_access_key_id and s3_secret_access_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    )]
    Credentials {
        store: String,
        #[source]
        source: Box<object_store::Error>,
    },
    /// Any other failed request (the endpoint unreachable, a timeout, a server error).
    #[error("{store}: {operation} `{key}` failed")]
    Request {
        store: String,
        operation: &'static str,
        key: String,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error("the blob store's own runtime stopped")]
    Stopped(#[source] tokio::task::JoinError),
    #[error("a blocking task did not finish")]
    Task(#[source] tokio::task::JoinError),
}

/// `<2 hex>/<sha256>.jpg`, relative to the store's root (the device's layout).
pub fn relative_name(sha256: &str) -> String {
    format!("{}/{sha256}.jpg", sha256.get(..2).unwrap_or("00"))
}

impl From<BlobStoreError> for crate::Error {
    fn from(error: BlobStoreError) -> Self {
        match error {
            BlobStoreError::Io { path, source } => crate::Error::Io { path, source },
            BlobStoreError::Task(e) => crate::Error::Task(e),
            // `crate::Error` has no variant of its own for the store; the chain is kept.
            other => crate::Error::Io {
                path: PathBuf::from("blob store"),
                source: std::io::Error::other(other),
            },
        }
    }
}
