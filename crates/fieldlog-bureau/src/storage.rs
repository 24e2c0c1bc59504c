//! Storage behind a trait: what the HTTP and admin layers need from a database, and the
//! records they exchange. [`crate::SqliteStorage`] is the one implementation today; a
//! PostgreSQL one can follow without touching the layers above, which hold an
//! `Arc<dyn Storage>`.
//!
//! Rules every implementation keeps:
//! - [`Storage::apply`] is atomic: it stores all of a request's new changes or, on any
//!   refusal or failure, none. It decides what to admit with [`crate::admit::admit`], so
//!   the actor binding and the registry rule are the same whatever the database.
//! - Every stored change gets a sequence number, and the numbers visible to a reader form a
//!   prefix (a change committed later never gets a lower number than one a reader has seen).
//!   [`Storage::changes_after`] relies on that to hand out cursors.
//! - Secrets are stored hashed: the storage only ever sees [`SecretHash`]es.

use crate::error::Result;
use crate::secret::SecretHash;
use automerge::{ActorId, Change, ChangeHash};
use fieldlog_core::registry::RegistryRows;
use fieldlog_core::{Conflict, DocId, ReportFilter, VisitFilter};
use fieldlog_domain::sync::{ChangeSignature, PublicKey};
use fieldlog_domain::{DeviceId, District, Report, Role, School, TeamId, TeamKind, Visit};
use serde::{Deserialize, Serialize};

/// The storage of a bureau: devices, teams, enrollment codes and every accepted change.
pub trait Storage: Send + Sync + std::fmt::Debug + 'static {
    /// The Automerge actor the bureau itself writes with (registry imports).
    fn bureau_actor(&self) -> &ActorId;

    // ---- teams, codes and devices ----

    /// Adds a team; [`crate::Error::TeamExists`] if the name is taken.
    fn add_team(&self, team: &Team, now_ms: i64) -> Result<()>;
    fn teams(&self) -> Result<Vec<Team>>;
    /// Stores a new enrollment code (its hash) for a member of an existing team.
    fn add_code(&self, code: &NewCode) -> Result<()>;
    /// Exchanges a code for a device: refuses an unknown, used or expired code
    /// (`bad_code`) and an actor already registered to another device (`forged_actor`).
    /// On success the code is spent and the device, its token hash and actors are stored.
    fn redeem_code(&self, redemption: &Redemption) -> Result<Enrolled>;
    /// The device holding this token, revoked or not; `None` if no device holds it.
    fn authenticate(&self, token: &SecretHash) -> Result<Option<DeviceRecord>>;
    /// Every enrolled device, oldest first.
    fn devices(&self) -> Result<Vec<DeviceRecord>>;
    /// Revokes a device (keeping the first revocation time); returns it as it is now.
    fn revoke_device(&self, device: DeviceId, now_ms: i64) -> Result<DeviceRecord>;
    /// Registers a device's signing key if it has none yet; a device keeps its first key.
    fn set_signing_key(&self, device: DeviceId, key: &PublicKey) -> Result<()>;
    /// The devices that own these actors (the bureau's own actor and unknown ones are
    /// absent).
    fn devices_of_actors(&self, actors: &[ActorId]) -> Result<Vec<(ActorId, DeviceRecord)>>;

    // ---- what coordinators read ----

    /// Schools, by district then name, from the same query rows a device keeps.
    fn schools(&self) -> Result<Vec<School>>;
    /// Visits, newest first, from the same query rows a device keeps.
    fn visits(&self, filter: &VisitFilter) -> Result<Vec<Visit>>;
    /// Fields holding concurrent values, with every value and its author.
    fn conflicts(&self) -> Result<Vec<Conflict>>;
    /// The published figures, by the same rules as everywhere else.
    fn report(&self, filter: &ReportFilter) -> Result<Report>;
    /// What waits for a coordinator, over everything held (core's queue).
    fn review_queue(
        &self,
        today: chrono::NaiveDate,
        unverified_after_days: u32,
    ) -> Result<fieldlog_core::queue::ReviewQueue>;
    /// The targets in force with their progress (core's rules).
    fn targets(
        &self,
        year: Option<i32>,
        district: Option<&fieldlog_domain::District>,
    ) -> Result<Vec<fieldlog_domain::TargetProgress>>;
    /// Writes the work ledger over everything held (core's export); returns the rows.
    fn export(
        &self,
        format: fieldlog_core::decide::Export,
        file: &std::path::Path,
        filter: &ReportFilter,
        offset: chrono::FixedOffset,
    ) -> Result<u64>;

    /// The visits that refer to a photo file: each one's document and the size it records.
    fn photo_refs(&self, sha256: &str) -> Result<Vec<(DocId, u64)>>;

    // ---- documents ----

    /// Applies a device's changes to the bureau's documents in one transaction. Already
    /// held changes are skipped, changes whose dependencies are missing are left out (the
    /// device sends them again later), and any refusal from [`crate::admit::admit`] stores
    /// nothing at all.
    fn apply(&self, device: &DeviceRecord, docs: Vec<IncomingDoc>) -> Result<Applied>;
    /// Changes after a cursor in the given scope, not sent by one device, in sequence order.
    /// A change larger than [`fieldlog_domain::sync::MAX_PASSED_CHANGE_BYTES`] is never
    /// returned (the cursor passes it), so no device is ever handed more than it takes.
    fn changes_after(&self, query: &ChangesQuery) -> Result<ChangesPage>;
    /// Removes changes that devices sent larger than `max_bytes`, with every change that
    /// builds on them, and rebuilds what they touched; returns what was removed.
    fn purge(&self, max_bytes: usize) -> Result<Vec<Purged>>;
    /// The bureau's heads of each document (empty for a document it does not hold).
    fn heads(&self, docs: &[DocId]) -> Result<Vec<(DocId, Vec<ChangeHash>)>>;
    /// A first sync's delivery ([`fieldlog_domain::sync::SyncResponse::resume`]): the
    /// log's newest sequence number, and the documents in scope after `after` in document
    /// order, whole (Automerge's document encoding), up to `max_bytes` (at least one).
    /// `None` when a document in scope holds a change no device takes
    /// ([`fieldlog_domain::sync::MAX_PASSED_CHANGE_BYTES`]): then the log is paged as usual.
    fn whole_documents(
        &self,
        scope_keys: &[String],
        after: Option<&str>,
        max_bytes: usize,
    ) -> Result<Option<WholeDocuments>>;
    /// Writes registry rows into the district documents, signed by the bureau's actor.
    /// Rows match existing schools by name within their district; a school already holding
    /// the same fields and `registered` is left alone, so importing a file twice changes
    /// nothing.
    fn import_registry(&self, rows: RegistryRows, now_ms: i64) -> Result<ImportSummary>;
}

/// What kind of team: a field team, or the bureau's own coordinators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamType {
    Volunteer,
    Caravan,
    Bureau,
}

impl TeamType {
    pub fn key(self) -> &'static str {
        match self {
            TeamType::Volunteer => "volunteer",
            TeamType::Caravan => "caravan",
            TeamType::Bureau => "bureau",
        }
    }

    pub fn parse(key: &str) -> Option<TeamType> {
        [TeamType::Volunteer, TeamType::Caravan, TeamType::Bureau]
            .into_iter()
            .find(|t| t.key() == key)
    }
}

impl From<TeamKind> for TeamType {
    fn from(kind: TeamKind) -> Self {
        match kind {
            TeamKind::Volunteer => TeamType::Volunteer,
            TeamKind::Caravan => TeamType::Caravan,
        }
    }
}

impl std::fmt::Display for TeamType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// A team and the districts it works in. A coordinator's region is their team's districts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: TeamId,
    pub kind: TeamType,
    pub districts: Vec<District>,
}

/// An enrolled device as the bureau knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub id: DeviceId,
    pub name: String,
    pub team: TeamId,
    pub member: String,
    pub role: Role,
    /// The Automerge actors registered to this device at enrollment.
    pub actors: Vec<ActorId>,
    /// The ed25519 key its change signatures verify under; `None` for a device enrolled
    /// before signatures that has not sent it yet.
    pub signing_key: Option<PublicKey>,
    pub enrolled_at: i64,
    pub revoked_at: Option<i64>,
}

/// A new enrollment code, by hash.
#[derive(Debug, Clone)]
pub struct NewCode {
    pub code: SecretHash,
    pub team: TeamId,
    pub member: String,
    pub role: Role,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// A device presenting a code.
#[derive(Debug, Clone)]
pub struct Redemption {
    pub code: SecretHash,
    /// Minted by the caller for the new device.
    pub device_id: DeviceId,
    pub device_name: String,
    pub actors: Vec<ActorId>,
    pub signing_key: Option<PublicKey>,
    /// The hash of the token the device will be given.
    pub token: SecretHash,
    pub now_ms: i64,
}

/// Who a redeemed code enrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    pub team: Team,
    pub member: String,
    pub role: Role,
}

/// One document's changes from a request, decoded.
#[derive(Debug, Clone)]
pub struct IncomingDoc {
    pub doc_id: DocId,
    pub changes: Vec<Change>,
    /// Signatures that came with them, kept with the changes admitted.
    pub signatures: Vec<ChangeSignature>,
    /// The devices (other than the sender) whose signed changes these are; their
    /// signatures were verified before.
    pub authors: Vec<DeviceRecord>,
}

/// A change `purge` removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Purged {
    pub seq: u64,
    pub doc_id: String,
    pub hash: String,
    /// The device that sent it.
    pub device_id: Option<String>,
    pub bytes: usize,
    /// Why: too large itself, or building on a removed change.
    pub reason: PurgeReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PurgeReason {
    TooLarge,
    DependsOnRemoved,
}

#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// How many changes were new and stored.
    pub accepted: usize,
    /// The bureau's heads of each document of the request, after applying.
    pub heads: Vec<(DocId, Vec<ChangeHash>)>,
}

#[derive(Debug, Clone)]
pub struct ChangesQuery {
    /// [`crate::scope::scope_key`]s of the documents the device may see.
    pub scope_keys: Vec<String>,
    /// The device's cursor: the highest sequence number it has received.
    pub after: u64,
    /// Leave out the changes this device sent.
    pub exclude_device: DeviceId,
    pub max_changes: usize,
    /// Stop before this many bytes of changes (at least one change is always given).
    pub max_bytes: usize,
}

/// Documents sent whole in a first sync ([`Storage::whole_documents`]).
#[derive(Debug, Clone, Default)]
pub struct WholeDocuments {
    /// The log's newest sequence number when they were read.
    pub last_seq: u64,
    /// Each document with its heads and its bytes.
    pub documents: Vec<(DocId, Vec<ChangeHash>, Vec<u8>)>,
    /// Whether documents in scope remain after the last one.
    pub more: bool,
}

/// One stored change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChange {
    pub seq: u64,
    pub doc_id: String,
    pub hash: ChangeHash,
    pub bytes: Vec<u8>,
    /// The author device's signature, if one came with the change.
    pub signature: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangesPage {
    /// In sequence order, which applies cleanly per document.
    pub changes: Vec<StoredChange>,
    /// The highest sequence number examined: every change in scope up to it is in this
    /// page or was sent by the excluded device.
    pub cursor: u64,
    pub more: bool,
}

pub use fieldlog_core::registry::ImportSummary;
