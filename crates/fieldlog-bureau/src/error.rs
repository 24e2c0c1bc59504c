//! What can go wrong at the bureau. A request the bureau turns down is [`Error::Refused`],
//! carrying the protocol's stable [`Refusal`] key; the rest say what failed and keep the cause.

use fieldlog_domain::sync::Refusal;
use fieldlog_domain::{TeamId, ValidationErrors};
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bureau refuses a device's request; nothing was stored.
    #[error("{detail}")]
    Refused { reason: Refusal, detail: String },
    /// An upload started at another offset than the bytes the bureau holds.
    #[error("the bureau holds {held} bytes of this file; resume from there")]
    OffsetMismatch { held: u64 },
    /// Input given to an admin command (a team name, a member name…) is not valid.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// A registry CSV refused: a bad row or a school listed twice.
    #[error(transparent)]
    Registry(#[from] fieldlog_core::registry::RegistryError),
    #[error("team {0} already exists")]
    TeamExists(TeamId),
    #[error("no team {0}; add it with `fieldlog-bureau team add` first")]
    UnknownTeam(TeamId),
    #[error("no device with id {0}")]
    UnknownDevice(String),
    #[error("this bureau is already initialized (its coordinators are team {team})")]
    AlreadyInitialized { team: TeamId },
    /// `migrate` refused to start or found the copy differs from the original.
    #[error("migration: {detail}")]
    Migration { detail: String },
    #[error("a member name must be 1 to 64 characters, without control characters")]
    InvalidMember,
    /// The database failed (unreachable, full, refused a statement): `target` says which
    /// (a file, or a PostgreSQL host and database, never a password).
    #[error("{backend} {target}")]
    Database {
        backend: &'static str,
        target: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Opening the file failed (SQLite, or a migration changed after it was applied).
    #[error(transparent)]
    Store(#[from] fieldlog_core::Error),
    /// A document the bureau stored does not load or take its own changes: a bug or a
    /// damaged file, never a device's fault.
    #[error("stored document {doc_id}")]
    Document {
        doc_id: String,
        #[source]
        source: Box<automerge::AutomergeError>,
    },
    #[error("stored change {seq} does not decode")]
    StoredChange {
        seq: u64,
        #[source]
        source: automerge::LoadChangeError,
    },
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("encoding the answer")]
    Encode(#[source] postcard::Error),
    #[error("compressing the answer")]
    Compress(#[source] std::io::Error),
    #[error("a blocking task did not finish")]
    Task(#[source] tokio::task::JoinError),
    #[error("starting the projection's thread")]
    Thread(#[source] std::io::Error),
}

impl Error {
    pub(crate) fn refused(reason: Refusal, detail: impl Into<String>) -> Error {
        Error::Refused {
            reason,
            detail: detail.into(),
        }
    }

    /// The refusal key, if this is a refusal.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Error::Refused { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

impl From<fieldlog_bureau_storage::StorageError> for Error {
    fn from(error: fieldlog_bureau_storage::StorageError) -> Self {
        use fieldlog_bureau_storage::StorageError as E;
        match error {
            E::Refused { reason, detail } => Error::Refused { reason, detail },
            E::TeamExists(team) => Error::TeamExists(team),
            E::UnknownTeam(team) => Error::UnknownTeam(team),
            E::UnknownDevice(id) => Error::UnknownDevice(id),
            E::Database {
                backend,
                target,
                source,
            } => Error::Database {
                backend,
                target,
                source,
            },
            E::Open(source) => Error::Store(source),
        }
    }
}
