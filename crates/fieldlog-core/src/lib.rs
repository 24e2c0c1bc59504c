//! Fieldlog's device library: everything a phone or laptop keeps, offline.
//!
//! - [`store`]: the [`Store`], one SQLite file per data directory (WAL, `synchronous=FULL`).
//!   Records live in Automerge documents; every write is one SQLite transaction holding the
//!   document change and the query rows projected from it.
//! - [`ledger`]: how visits and schools map onto Automerge documents (ledgers per team and
//!   month, registries per district), and conflict detection.
//! - [`bundle`]: moving changes between devices as a file.
//! - [`sync`]: enrollment and rounds with the bureau over HTTP.
//! - [`upload`]: photo files to and from the bureau, resuming at the byte; originals kept
//!   per [`settings`].
//! - [`photo`]: photo ingest: an upright display copy and thumbnail with no metadata, stored
//!   under their sha256; hostile images refused before decoding.
//! - [`registry`]: school registry CSV imports, one implementation for device and bureau.
//! - [`staging`]: photos ingested when picked, waiting for [`Store::save_visit`], which
//!   saves a visit with its photos in one transaction.
//! - [`db`]: opening SQLite files with WAL, full sync and pinned append-only migrations.
//! - [`projection`]: query rows derived from documents, and the queries over them (visits,
//!   conflicts, the report); the bureau shares them.
//! - [`signing`]: each device's ed25519 key and its signatures of the changes it authors.
//! - [`chunks`]: Automerge bytes from elsewhere, size-checked before Automerge inflates them.
//! - `docs`, `search`: document persistence, pinyin keys.
//!
//! The library reads no environment: callers pass the data directory, the clock and today's
//! date.
//!
//! ```
//! use fieldlog_core::{Options, Store, store::ReportFilter};
//! use fieldlog_domain::{SchoolInput, SchoolStatus, VisitInput};
//! let dir = tempfile::tempdir().unwrap();
//! let mut store = Store::init(dir.path(), "一号机", "caravan-1", Options::default()).unwrap();
//! store.add_school(&SchoolInput {
//!     name: "南山小学".into(), district: "南山区".into(), area: "城区".into(),
//!     ..Default::default()
//! }, SchoolStatus::Registered).unwrap();
//! assert_eq!(store.search_schools("nsxx", 5).unwrap()[0].fields.name, "南山小学");
//! let input: VisitInput = serde_json::from_str(r#"{"school": "南山小学",
//!     "activities": ["lecture"], "audience": {"students": 40, "teachers": 2}}"#).unwrap();
//! let today = "2026-05-20".parse().unwrap();
//! store.add_visit(&input, today).unwrap();
//! let report = store.report(&ReportFilter::default()).unwrap();
//! assert_eq!((report.visits, report.audience, report.urban_schools), (1, 42, 1));
//! ```

pub mod bundle;
pub mod chunks;
pub mod clock;
pub mod course;
pub mod db;
pub mod decide;
pub mod desk;
mod docs;
pub mod duplicates;
pub mod error;
pub mod export;
pub mod ledger;
pub mod photo;
pub mod projection;
pub mod queue;
pub mod registry;
pub mod review;
mod search;
pub mod settings;
pub mod signing;
pub mod staging;
pub mod store;
pub mod sync;
pub mod targets;
pub mod upload;

pub use bundle::{BundleStats, ExportScope, ImportStats};
pub use clock::{Clock, FixedClock, SystemClock};
pub use docs::{decode_heads, encode_heads};
pub use error::{Error, Result};
pub use ledger::{Conflict, ConflictValue, DocId};
pub use settings::{OriginalsPolicy, Settings};
pub use staging::StagedPhoto;
pub use store::{
    Device, ImportSummary, Options, PhotoToAttach, ReportFilter, Store, VisitFilter, VisitSave,
};
pub use sync::{Enrollment, SyncStatus, SyncSummary};
pub use upload::UploadQueue;
