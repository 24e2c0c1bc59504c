//! Fieldlog's bureau: the sync server devices enroll with and exchange changes through.
//!
//! - [`Bureau`]: the handle the HTTP layer and the admin commands share (cheap to clone).
//!   Its methods live in [`admin`] (teams, enrollment codes, devices, registry imports)
//!   and [`sync`] (one sync round: decode, authorize, apply, answer).
//! - [`http`]: the axum routes (`/v1/enroll`, `/v1/sync`, `/v1/blobs/…`, `/healthz`,
//!   `/readyz`).
//! - [`net`]: [`serve`], connections under [`ServeConfig`]: header and body timeouts, a
//!   connection cap answered `busy`, a shutdown deadline. [`limits`]: request rates per
//!   device and, for enrollment, per address. [`serve_with`] adds a metrics listener and
//!   [`tls`]: rustls with a certificate reloaded on demand.
//! - [`metrics`]: what the bureau counts for Prometheus (`GET /metrics` on the metrics
//!   listener): requests by route and status, sync rounds and their changes, bytes, blobs,
//!   active devices.
//! - [`blobs`]: photo files uploaded resumably (each device into its own partial file on
//!   disk) and checked against their sha256, then kept in a [`BlobStore`] ([`blobstore`]):
//!   the data directory's `blobs/` by default, or an S3-compatible bucket.
//! - [`storage`]: the [`Storage`] trait the layers above see, as `Arc<dyn Storage>`:
//!   transactional primitives (teams, codes, devices, the change log, documents' snapshots)
//!   and their records. [`sqlite`] is the embedded default (one `bureau.sqlite3` per data
//!   dir), [`postgres`] the PostgreSQL backend ([`Database`] picks one); each is a crate
//!   of its own (`fieldlog-bureau-storage`, `-sqlite`, `-postgres`).
//! - [`documents`]: the document lifecycle over any storage (cache, admit, append,
//!   snapshot, purge). [`projection`]: core's query tables caught up from the log, which
//!   every figure and export reads.
//! - [`backup`]: online backups of a data directory (SQLite's backup API, then the photo
//!   files, with a manifest of sha256s) and their checked restore.
//! - [`admit`]: which changes a device may add to a document (actor binding, missing
//!   dependencies, the registry rule), shared by every storage.
//! - [`scope`]: which documents a device may see. [`secret`]: codes and tokens, stored
//!   hashed. [`registry`]: school CSV imports written by the bureau's own actor.
//!
//! The protocol itself is [`fieldlog_domain::sync`]. The library reads no environment:
//! the `fieldlog-bureau` binary reads flags, `FIELDLOG_BUREAU_*` and a config file, and
//! passes values in.
//!
//! ```
//! use automerge::{transaction::Transactable, ObjType, ROOT};
//! use fieldlog_bureau::{Bureau, Config, TeamType};
//! use fieldlog_domain::Role;
//! use fieldlog_domain::sync::{DocChanges, EnrollRequest, PROTOCOL_VERSION, SyncRequest};
//! use std::time::Duration;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let bureau = Bureau::open(dir.path(), Config::default()).unwrap();
//! bureau.add_team("caravan-1", TeamType::Caravan, &["南山区".into()]).unwrap();
//! let code = bureau
//!     .issue_code("caravan-1", "李老师", Role::Volunteer, Duration::from_secs(3600))
//!     .unwrap();
//!
//! // A device enrolls with the code and the Automerge actor it writes with…
//! let actor = automerge::ActorId::random();
//! let enrolled = bureau
//!     .enroll(&EnrollRequest {
//!         code: code.code,
//!         device_name: "一号机".into(),
//!         actors: vec![actor.to_hex_string()],
//!         signing_key: None,
//!     })
//!     .unwrap();
//!
//! // …writes into its team's ledger and sends the change in a sync round.
//! let mut doc = automerge::AutoCommit::new().with_actor(actor);
//! let visit = doc.put_object(ROOT, uuid::Uuid::now_v7().to_string(), ObjType::Map).unwrap();
//! doc.put(&visit, "topic", "水的三态").unwrap();
//! let change = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
//! let device = bureau.authenticate(&enrolled.token).unwrap();
//! let answer = bureau
//!     .sync_request(&device, SyncRequest {
//!         protocol: PROTOCOL_VERSION,
//!         cursor: 0,
//!         docs: vec![DocChanges {
//!             doc_id: "ledger/caravan-1/2026-05".into(),
//!             changes: vec![change.into()],
//!             document: None,
//!             signatures: Vec::new(),
//!         }],
//!         max_changes: 100,
//!         signing_key: None,
//!         resume: None,
//!     })
//!     .unwrap();
//! assert_eq!((answer.accepted, answer.cursor, answer.more), (1, 1, false));
//! assert!(answer.changes.is_empty(), "a device never gets its own changes back");
//! ```
//!
//! Over HTTP the same handle is served with [`serve`] on a bound listener.

pub mod admin;
pub mod admit;
pub mod backup;
pub mod blobs;
pub mod blobstore;
pub mod documents;
pub mod error;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod migrate;
pub mod net;
pub mod projection;
pub mod registry;
pub mod scope;
pub mod secret;
pub mod storage;
pub mod sync;
pub mod tls;

pub use admin::IssuedCode;
pub use blobs::Blobs;
pub use blobstore::{BlobStore, LocalFolder, S3Settings, S3Store};
pub use documents::DocOptions;
pub use error::{Error, Result};
pub use fieldlog_bureau_postgres::{self as postgres, PostgresStorage};
pub use fieldlog_bureau_sqlite::{self as sqlite, DB_FILE, SqliteStorage};
pub use fieldlog_core::{Clock, FixedClock, SystemClock};
pub use http::router;
pub use net::{RateLimit, ServeConfig, ServeOptions, connection_cap, serve, serve_with};
pub use projection::ProjectionFile;
pub use scope::Scope;
pub use storage::{DeviceRecord, ImportSummary, PurgeReason, Purged, Storage, Team, TeamType};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The projection's file in the data directory, on every backend ([`projection`]).
pub const PROJECTION_FILE: &str = "projection.sqlite3";
/// Where a bureau keeps photo files, by sha256 (see [`blobs`]).
pub const BLOB_DIR: &str = "blobs";
/// How long an enrollment code stays valid unless told otherwise.
pub const DEFAULT_CODE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Settings the caller chooses; the library reads no environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// The most changes one answer carries, whatever the device asks for.
    pub max_changes_per_response: u32,
    /// The most bytes of changes one answer carries (one change is always sent).
    pub max_response_bytes: usize,
    /// Where the records are: the data directory's SQLite file, or PostgreSQL.
    pub database: Database,
    pub documents: DocOptions,
    /// Timeouts, the connection cap, the shutdown deadline and rate limits of [`serve`].
    pub serve: ServeConfig,
    pub clock: Arc<dyn Clock>,
    /// Where complete photo files go: `None` for `blobs/` in the data directory (a
    /// [`LocalFolder`]), or another store such as an [`S3Store`]. Uploads in progress
    /// stay in `blobs/partial/` either way.
    pub blob_store: Option<Arc<dyn BlobStore>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_changes_per_response: 1_000,
            max_response_bytes: 4 * 1024 * 1024,
            database: Database::Embedded,
            documents: DocOptions::default(),
            serve: ServeConfig::default(),
            clock: Arc::new(SystemClock),
            blob_store: None,
        }
    }
}

/// Where a bureau keeps its records.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Database {
    /// `bureau.sqlite3` in the data directory: the default.
    #[default]
    Embedded,
    /// A PostgreSQL database, by `postgres://` URL.
    Postgres { url: String },
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Embedded => f.write_str("Embedded"),
            // The URL may hold a password.
            Database::Postgres { url } => write!(f, "Postgres({})", postgres::redacted(url)),
        }
    }
}

/// The bureau: storage plus settings. Clone it freely; clones share everything.
#[derive(Debug, Clone)]
pub struct Bureau {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    storage: Arc<dyn Storage>,
    docs: documents::Docs,
    projection: ProjectionFile,
    projector: Arc<projection::Projector>,
    blobs: Blobs,
    config: Config,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.projector.close();
    }
}

impl Bureau {
    /// Opens the bureau in `data_dir` with the database `config.database` names, creating
    /// the directory, the embedded file (or the PostgreSQL tables), the `blobs/` directory
    /// and the bureau's Automerge actor as needed. Complete photo files go to
    /// `config.blob_store` (nothing is asked of it here).
    #[tracing::instrument(skip_all, err, fields(data_dir = %data_dir.display()))]
    pub fn open(data_dir: &Path, config: Config) -> Result<Bureau> {
        for dir in [data_dir.to_path_buf(), data_dir.join(BLOB_DIR)] {
            std::fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir, source })?;
        }
        let now_ms = config.clock.now_ms();
        let storage: Arc<dyn Storage> = match &config.database {
            Database::Embedded => Arc::new(SqliteStorage::open(data_dir, now_ms)?),
            Database::Postgres { url } => Arc::new(PostgresStorage::connect(url, now_ms)?),
        };
        let projection = ProjectionFile::open(&data_dir.join(PROJECTION_FILE))?;
        let dir = data_dir.join(BLOB_DIR);
        let blobs = match &config.blob_store {
            Some(store) => Blobs::with_store(&dir, store.clone()),
            None => Blobs::new(&dir),
        };
        Bureau::with_storage(storage, projection, blobs, config)
    }

    /// A bureau over any storage, its projection caught up.
    pub fn with_storage(
        storage: Arc<dyn Storage>,
        projection: ProjectionFile,
        blobs: Blobs,
        config: Config,
    ) -> Result<Bureau> {
        let bureau = Bureau {
            inner: Arc::new(Inner {
                storage,
                docs: documents::Docs::new(config.documents),
                projection,
                projector: Arc::default(),
                blobs,
                config,
            }),
        };
        bureau.project(false)?;
        projection::Projector::start(&bureau)?;
        Ok(bureau)
    }

    pub fn blobs(&self) -> &Blobs {
        &self.inner.blobs
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.inner.storage
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    fn now_ms(&self) -> i64 {
        self.inner.config.clock.now_ms()
    }
}
