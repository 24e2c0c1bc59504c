//! The bureau's storage seam: the transactional primitives a database gives the bureau
//! ([`Storage`], [`DocWriter`]), the records they exchange, and backend-neutral errors
//! ([`StorageError`]). `fieldlog-bureau-sqlite` (the embedded default, one file) and
//! `fieldlog-bureau-postgres` implement it; `fieldlog-bureau` holds an `Arc<dyn Storage>`
//! and runs everything else (the document lifecycle, the projection, sync, admin) as one
//! code path over it.
//!
//! Rules every implementation keeps:
//! - A [`DocWriter`] is one transaction that excludes every other writer of the same
//!   database, in any process, until it commits or is dropped (dropped: rolled back).
//! - Every appended change gets a sequence number, and the numbers visible to a reader
//!   form a prefix: a change committed later never gets a lower number than one a reader
//!   has seen. [`Storage::changes_after`] hands out cursors on that rule.
//! - Each read method answers from one consistent snapshot.
//! - Secrets are stored hashed: the storage only ever sees [`SecretHash`]es.

use automerge::{ActorId, ChangeHash};
use fieldlog_domain::sync::{PublicKey, Refusal};
use fieldlog_domain::{DeviceId, District, Role, TeamId, TeamKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// What a storage reports: a refusal the bureau passes on to the device, or a failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The request is refused (a bad enrollment code, an actor already registered);
    /// nothing was stored.
    #[error("{detail}")]
    Refused { reason: Refusal, detail: String },
    #[error("team {0} already exists")]
    TeamExists(TeamId),
    #[error("no team {0}; add it with `fieldlog-bureau team add` first")]
    UnknownTeam(TeamId),
    #[error("no device with id {0}")]
    UnknownDevice(String),
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
    Open(#[from] fieldlog_core::Error),
}

impl StorageError {
    pub fn refused(reason: Refusal, detail: impl Into<String>) -> StorageError {
        StorageError::Refused {
            reason,
            detail: detail.into(),
        }
    }
}

/// The sha256 of a secret, hex. What the storage keeps instead of the secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretHash(String);

impl SecretHash {
    pub fn of(secret: &str) -> SecretHash {
        SecretHash(hex::encode(Sha256::digest(secret.as_bytes())))
    }

    /// The hash of an enrollment code as a person may type it (case, spaces and dashes
    /// do not matter).
    pub fn of_code(code: &str) -> SecretHash {
        let normalized: String = code
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        SecretHash::of(&normalized)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The storage of a bureau: devices, teams, enrollment codes and every accepted change.
pub trait Storage: Send + Sync + std::fmt::Debug + 'static {
    /// Which database this is, for logs and errors (never a password).
    fn describe(&self) -> String;
    /// The Automerge actor the bureau itself writes with (registry imports).
    fn bureau_actor(&self) -> &ActorId;

    // ---- teams, codes and devices ----

    /// Adds a team; [`StorageError::TeamExists`] if the name is taken.
    fn add_team(&self, team: &Team, now_ms: i64) -> Result<()>;
    fn teams(&self) -> Result<Vec<Team>>;
    /// One team, if it exists.
    fn team(&self, id: &TeamId) -> Result<Option<Team>>;
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
    fn devices_of_actors(&self, actors: &[ActorId]) -> Result<Vec<(ActorId, DeviceRecord)>> {
        let devices = self.devices()?;
        Ok(actors
            .iter()
            .filter_map(|actor| {
                let device = devices.iter().find(|d| d.actors.contains(actor))?;
                Some((actor.clone(), device.clone()))
            })
            .collect())
    }

    // ---- the change log ----

    /// Changes after a cursor in the given scope, not sent by one device, in sequence order.
    /// A change larger than `query.max_change_bytes` is never returned (the cursor passes
    /// it), so no device is ever handed more than it takes.
    fn changes_after(&self, query: &ChangesQuery) -> Result<ChangesPage>;
    /// The stored heads of each document (empty for a document not held), in order.
    fn heads(&self, doc_ids: &[String]) -> Result<Vec<Vec<ChangeHash>>>;
    /// The documents in scope after `after`, in document order, with the log's newest
    /// sequence number; `None` when one of them holds a change larger than
    /// `max_change_bytes` (a first sync then pages the log instead).
    fn documents_in_scope(
        &self,
        scope_keys: &[String],
        after: Option<&str>,
        max_change_bytes: usize,
    ) -> Result<Option<DocumentsInScope>>;
    /// Where a document stands: its last sequence number and purge count.
    fn version(&self, doc_id: &str) -> Result<DocVersion>;
    /// A document as stored: with `after`, only its changes after that sequence number;
    /// without, its snapshot and the changes after it.
    fn document(&self, doc_id: &str, after: Option<u64>) -> Result<StoredDoc>;
    /// The documents whose log moved past `seq`, with the log's newest sequence number and
    /// the total of purges, from one snapshot.
    fn changed_since(&self, seq: u64) -> Result<ChangedSince>;
    /// Starts a write (see [`DocWriter`]).
    fn begin(&self) -> Result<Box<dyn DocWriter + '_>>;
}

/// One write transaction over the documents: it excludes every other writer until
/// [`DocWriter::commit`]; dropped without a commit, it stores nothing.
pub trait DocWriter {
    /// [`Storage::version`] inside this transaction.
    fn version(&mut self, doc_id: &str) -> Result<DocVersion>;
    /// [`Storage::document`] inside this transaction.
    fn document(&mut self, doc_id: &str, after: Option<u64>) -> Result<StoredDoc>;
    /// The documents already holding any of these changes, as `(hash, doc_id)`.
    fn held(&mut self, hashes: &[ChangeHash]) -> Result<Vec<(ChangeHash, String)>>;
    /// Appends changes to the log, numbered in order, and sets the document's heads.
    fn append(&mut self, append: &Append<'_>) -> Result<Appended>;
    /// Saves a snapshot holding every change of the document up to `upto_seq`.
    fn put_snapshot(&mut self, doc_id: &str, upto_seq: u64, bytes: &[u8]) -> Result<()>;
    /// Documents holding a change a device sent larger than `max_bytes`.
    fn oversized_documents(&mut self, max_bytes: usize) -> Result<Vec<String>>;
    /// A document's whole log, in sequence order.
    fn log(&mut self, doc_id: &str) -> Result<Vec<LoggedChange>>;
    /// Removes changes from a document's log and stores what remains (a purge): its new
    /// snapshot, heads and counts; the document's purge count goes up by one.
    fn rewrite(&mut self, rewrite: &Rewrite<'_>) -> Result<()>;
    fn commit(self: Box<Self>) -> Result<()>;
}

/// Where a document stands in the log. Both are zero for a document not held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DocVersion {
    pub last_seq: u64,
    pub purges: u64,
}

/// A document as stored ([`Storage::document`]).
#[derive(Debug, Clone, Default)]
pub struct StoredDoc {
    /// A saved copy holding every change up to `snapshot_seq`.
    pub snapshot: Option<Vec<u8>>,
    pub snapshot_seq: u64,
    /// The changes after the snapshot (or after the cursor asked for), in order.
    pub changes: Vec<(u64, Vec<u8>)>,
    /// The version this read saw.
    pub version: DocVersion,
}

/// [`Storage::documents_in_scope`].
#[derive(Debug, Clone, Default)]
pub struct DocumentsInScope {
    pub last_seq: u64,
    pub doc_ids: Vec<String>,
}

/// [`Storage::changed_since`].
#[derive(Debug, Clone, Default)]
pub struct ChangedSince {
    pub last_seq: u64,
    /// Purges over all documents: when it moves, derived rows are rebuilt.
    pub purges: u64,
    pub doc_ids: Vec<String>,
}

/// One change to append.
#[derive(Debug, Clone)]
pub struct NewChange<'a> {
    pub hash: ChangeHash,
    pub bytes: &'a [u8],
    /// The author's signature, when one came with it.
    pub signature: Option<&'a [u8]>,
}

/// Changes to append to one document ([`DocWriter::append`]).
#[derive(Debug, Clone)]
pub struct Append<'a> {
    pub doc_id: &'a str,
    pub scope_key: &'a str,
    /// The sending device; `None` for the bureau's own changes.
    pub device: Option<DeviceId>,
    pub changes: Vec<NewChange<'a>>,
    /// The document's heads once they are applied.
    pub heads: &'a [ChangeHash],
}

/// What [`DocWriter::append`] did.
#[derive(Debug, Clone, Copy)]
pub struct Appended {
    /// The sequence number of the last change appended.
    pub last_seq: u64,
    /// Changes appended to the document since its last snapshot.
    pub since_snapshot: u64,
}

/// One change of a document's log ([`DocWriter::log`]).
#[derive(Debug, Clone)]
pub struct LoggedChange {
    pub seq: u64,
    pub hash: Vec<u8>,
    /// The sending device; `None` for the bureau's own changes.
    pub device_id: Option<String>,
    pub bytes: Vec<u8>,
}

/// A purged document as it remains ([`DocWriter::rewrite`]).
#[derive(Debug, Clone)]
pub struct Rewrite<'a> {
    pub doc_id: &'a str,
    pub removed: &'a [u64],
    pub snapshot: &'a [u8],
    pub heads: &'a [ChangeHash],
    /// The last sequence number it keeps (0 if none).
    pub last_seq: u64,
    pub change_count: u64,
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

#[derive(Debug, Clone)]
pub struct ChangesQuery {
    /// scope keys (`fieldlog_bureau::scope::scope_key`) of the documents the device may see.
    pub scope_keys: Vec<String>,
    /// The device's cursor: the highest sequence number it has received.
    pub after: u64,
    /// Leave out the changes this device sent.
    pub exclude_device: DeviceId,
    pub max_changes: usize,
    /// Stop before this many bytes of changes (at least one change is always given).
    pub max_bytes: usize,
    /// Pass over changes larger than this: no device takes them.
    pub max_change_bytes: usize,
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

/// One row of a [`Storage::changes_after`] query, as a backend reads it.
#[derive(Debug, Clone)]
pub struct ChangeRow {
    pub seq: u64,
    pub doc_id: String,
    pub hash: Vec<u8>,
    pub bytes: Vec<u8>,
    pub signature: Option<Vec<u8>>,
}

/// Cuts a page from rows in sequence order (at most `query.max_changes + 1` of them):
/// the same paging for every backend. `last_seq` is the log's newest number in the
/// snapshot the rows come from.
pub fn page(
    rows: impl IntoIterator<Item = Result<ChangeRow>>,
    query: &ChangesQuery,
    last_seq: u64,
) -> Result<ChangesPage> {
    let mut changes = Vec::new();
    let mut bytes = 0usize;
    let mut more = false;
    let max_bytes = query.max_bytes.min(query.max_change_bytes);
    for row in rows {
        let row = row?;
        let full = changes.len() >= query.max_changes
            || (!changes.is_empty() && bytes + row.bytes.len() > max_bytes);
        if full {
            more = true;
            break;
        }
        bytes += row.bytes.len();
        let Ok(hash) = <[u8; 32]>::try_from(row.hash) else {
            continue;
        };
        changes.push(StoredChange {
            seq: row.seq,
            doc_id: row.doc_id,
            hash: ChangeHash(hash),
            bytes: row.bytes,
            signature: row.signature,
        });
    }
    let cursor = if more {
        changes.last().map_or(query.after, |c| c.seq)
    } else {
        last_seq
    };
    Ok(ChangesPage {
        changes,
        cursor,
        more,
    })
}

impl Team {
    /// A team from its stored columns (districts as a JSON array); `None` if unreadable.
    pub fn from_row(id: &str, kind: &str, districts: &str) -> Option<Team> {
        let districts: Vec<String> = serde_json::from_str(districts).ok()?;
        Some(Team {
            id: TeamId::parse(id).ok()?,
            kind: TeamType::parse(kind)?,
            districts: districts
                .iter()
                .map(|d| District::parse(d).ok())
                .collect::<Option<_>>()?,
        })
    }

    /// The districts as stored: a JSON array of names.
    pub fn districts_json(&self) -> String {
        serde_json::Value::from(
            self.districts
                .iter()
                .map(|d| d.as_str())
                .collect::<Vec<_>>(),
        )
        .to_string()
    }
}

/// A device from its stored columns; `None` (and a warning) if unreadable.
#[allow(clippy::too_many_arguments, reason = "one stored row")]
pub fn device_from_row(
    id: &str,
    name: String,
    team: &str,
    member: String,
    role: &str,
    actors: &[String],
    signing_key: Option<Vec<u8>>,
    enrolled_at: i64,
    revoked_at: Option<i64>,
) -> Option<DeviceRecord> {
    let (Ok(device_id), Ok(team), Ok(role)) = (
        id.parse::<DeviceId>(),
        TeamId::parse(team),
        Role::parse(role),
    ) else {
        tracing::warn!(device = id, "skipping an unreadable device row");
        return None;
    };
    Some(DeviceRecord {
        id: device_id,
        name,
        team,
        member,
        role,
        actors: actors
            .iter()
            .filter_map(|hex| ActorId::try_from(hex.as_str()).ok())
            .collect(),
        signing_key: signing_key.and_then(|k| k.try_into().ok()),
        enrolled_at,
        revoked_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(sizes: &[usize]) -> Vec<Result<ChangeRow>> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, size)| {
                Ok(ChangeRow {
                    seq: i as u64 + 11,
                    doc_id: "ledger/caravan-1/2026-05".into(),
                    hash: vec![i as u8; 32],
                    bytes: vec![0; *size],
                    signature: None,
                })
            })
            .collect()
    }

    fn query(max_changes: usize, max_bytes: usize) -> ChangesQuery {
        ChangesQuery {
            scope_keys: vec!["team:caravan-1".into()],
            after: 10,
            exclude_device: DeviceId(uuid::Uuid::nil()),
            max_changes,
            max_bytes,
            max_change_bytes: 1_000,
        }
    }

    #[test]
    fn a_page_stops_at_its_count_or_its_bytes_and_always_carries_one_change() {
        let full = page(rows(&[10, 10, 10]), &query(2, 1_000), 99).unwrap();
        assert_eq!((full.changes.len(), full.cursor, full.more), (2, 12, true));
        let bytes = page(rows(&[600, 600]), &query(10, 1_000), 99).unwrap();
        assert_eq!(
            (bytes.changes.len(), bytes.cursor, bytes.more),
            (1, 11, true)
        );
        let huge = page(rows(&[5_000]), &query(10, 100), 99).unwrap();
        assert_eq!(huge.changes.len(), 1, "one change goes even past max_bytes");
        let last = page(rows(&[10]), &query(10, 1_000), 99).unwrap();
        assert_eq!((last.cursor, last.more), (99, false), "the log's end");
        let none = page(rows(&[]), &query(10, 1_000), 42).unwrap();
        assert_eq!((none.changes.len(), none.cursor), (0, 42));
    }

    #[test]
    fn a_team_reads_back_from_its_row() {
        let team = Team::from_row("caravan-1", "caravan", r#"["南山区","青溪县"]"#).unwrap();
        assert_eq!(team.kind, TeamType::Caravan);
        assert_eq!(team.districts_json(), r#"["南山区","青溪县"]"#);
        assert_eq!(Team::from_row("caravan-1", "ship", "[]"), None);
        assert_eq!(Team::from_row("caravan-1", "caravan", "not json"), None);
    }
}
